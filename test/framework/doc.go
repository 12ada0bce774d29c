// Package framework starts a real Kubernetes control plane for tests (etcd and kube-apiserver
// through controller-runtime's envtest, on request kube-controller-manager and cert-manager,
// every binary from bin/ as `make tools` builds it, nothing faked), runs the proxy binary in
// front of it (StartProxy), and on request adds a real node: containerd and a kubelet on this
// machine, isolated from the host, running real Pods (Options.Node, node*.go).
//
// A test package starts one control plane for all its tests:
//
//	var cp *framework.ControlPlane
//
//	func TestMain(m *testing.M) {
//		os.Exit(framework.Main(m, framework.Options{ControllerManager: true}, &cp))
//	}
//
// With a node, the images come from this checkout (BuildImages, internal/image):
//
//	built, err := framework.BuildImages(ctx)
//	node, err := framework.NodeImages(built)
//	os.Exit(framework.Main(m, framework.Options{Node: node}, &cp))
package framework
