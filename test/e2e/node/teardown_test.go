package node

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/rbac-proxy/rbac-proxy/test/framework"
)

// Stop removes everything the node made, the Pods still running included: no
// process, mount, cgroup, bridge, veth or network namespace is left. It stops
// the suite's control plane, so it runs after the tests that use it (Go runs
// a package's tests in file order); Main's own Stop afterwards does nothing.
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

// A start that fails once containerd runs (an image that cannot be
// imported) stops what it started and leaves nothing either.
func TestFailedStartLeavesNothing(t *testing.T) {
	opts := *nodeOpts
	opts.Images = append(append([]string{}, opts.Images...), filepath.Join(t.TempDir(), "missing.tar"))
	failed, err := framework.Start(context.Background(), framework.Options{Node: &opts})
	if err == nil {
		_ = failed.Stop()
		t.Fatal("Start with an image that does not exist succeeded")
	}
	if errors.Is(err, framework.ErrNoNode) || failed == nil || failed.Node == nil {
		t.Fatalf("Start failed before the node ran: %v", err)
	}
	t.Logf("Start failed as it should: %v", err)
	if err := failed.Node.CheckClean(); err != nil {
		t.Errorf("after a failed start: %v", err)
	}
}
