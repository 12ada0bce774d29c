package node

import (
	"testing"
	"time"
)

// Stop removes everything the node made: no process, mount, cgroup, bridge,
// veth or network namespace is left. It stops the suite's control plane, so
// it runs last (Go runs a package's tests in file order); Main's own Stop
// afterwards does nothing.
func TestTeardownLeavesNothing(t *testing.T) {
	begin := time.Now()
	if err := cp.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	t.Logf("figure: teardown (Stop: Pods, kubelet, containerd, control plane, bridge) %s; the node's part %s",
		time.Since(begin).Round(100*time.Millisecond), cp.Node.TeardownTook().Round(100*time.Millisecond))
	if err := cp.Node.CheckClean(); err != nil {
		t.Errorf("after Stop: %v", err)
	}
}
