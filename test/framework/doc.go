// Package framework starts a real Kubernetes control plane for tests: etcd and
// kube-apiserver (through controller-runtime's envtest), and on request
// kube-controller-manager and the cert-manager controller. Every binary comes
// from bin/ at the repository root, built by `make tools`; nothing is faked.
//
// A test package starts one control plane for all its tests:
//
//	var cp *framework.ControlPlane
//
//	func TestMain(m *testing.M) {
//		os.Exit(framework.Main(m, framework.Options{ControllerManager: true}, &cp))
//	}
package framework
