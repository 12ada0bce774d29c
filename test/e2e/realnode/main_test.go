// Package realnode runs the user story on a real node: a kubelet and containerd started by the
// test framework, the chart installed with cert-manager issuing, the webhook (a host process
// the API server reaches by URL) injecting the sample exporter's Deployment and DaemonSet, and
// Debian's Prometheus in a Pod scraping the exporters' Pod IPs through the proxy sidecars, with
// a projected ServiceAccount token and with a client certificate. It checks what only a kubelet
// decides: native-sidecar start and restart, probes through the proxy's pass-through, the
// redirect init container's nftables in the Pod's netns, the Secret volume rotated by the
// kubelet under Prometheus' scrapes; that what `rbac-proxy-injector scrape-config` prints is
// valid against prometheus-operator's CRDs and scrapes every exporter in a Prometheus of its
// own; and that the node leaves nothing behind.
//
// It needs root and the machine's runtime (make test-deps); when the node cannot start it fails
// saying what is missing, it never skips.
package realnode

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/rbac-proxy/rbac-proxy/test/framework"
)

var cp *framework.ControlPlane

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	node, err := nodeOptions()
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: building the node's images:", err)
		return 1
	}
	code := framework.Main(m, framework.Options{ControllerManager: true, CertManager: true, Node: node}, &cp)
	if cp != nil && cp.Node != nil {
		figures.add("node: start → Ready", cp.Node.StartTook().Round(10*time.Millisecond).String())
		figures.add("node: teardown (Pods, kubelet, containerd, cgroups, bridge)", cp.Node.TeardownTook().Round(10*time.Millisecond).String())
		// framework.Main has stopped everything: the node must have left no trace.
		if err := cp.Node.CheckClean(); err != nil {
			fmt.Fprintln(os.Stderr, "FAIL: the node left something behind:", err)
			code = 1
		} else {
			fmt.Println("the node left no process, mount, bridge, cgroup or netns behind")
		}
	}
	printFigures(os.Stdout)
	return code
}
