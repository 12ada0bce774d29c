// Package framework starts a real Kubernetes control plane for tests (etcd and kube-apiserver
// through controller-runtime's envtest, on request kube-controller-manager and cert-manager,
// every binary from bin/ as `make tools` builds it, nothing faked) and runs the proxy binary in
// front of it (StartProxy).
//
// A test package starts one control plane for all its tests:
//
//	var cp *framework.ControlPlane
//
//	func TestMain(m *testing.M) {
//		os.Exit(framework.Main(m, framework.Options{ControllerManager: true}, &cp))
//	}
package framework
