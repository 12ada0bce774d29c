package framework

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// Without its programs a machine cannot run a node, and the error names
// each missing one and wraps ErrNoNode, so no caller mistakes it for a node
// that failed.
func TestPreflightNamesWhatIsMissing(t *testing.T) {
	empty := t.TempDir()
	t.Setenv("PATH", empty)
	_, err := preflight(empty, t.TempDir()+"/node")
	if !errors.Is(err, ErrNoNode) {
		t.Fatalf("preflight with nothing on PATH = %v, want ErrNoNode", err)
	}
	for _, want := range []string{"containerd on PATH", "ctr on PATH", "containerd-shim-runc-v2 on PATH", "runc on PATH",
		"nsenter on PATH", "ip on PATH", empty + "/kubelet", empty + "/kube-scheduler"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("preflight's error does not name %q: %v", want, err)
		}
	}
	if os.Geteuid() != 0 && !strings.Contains(err.Error(), "root") {
		t.Errorf("preflight as uid %d does not say root is needed: %v", os.Geteuid(), err)
	}
}

func TestOutsideOverlays(t *testing.T) {
	for _, tc := range []struct {
		dir, fail string // fail: "" when the folder may hold a node
	}{
		{t.TempDir(), ""},
		{"/var", "under /var"},
		{"/var/tmp", "under /var"},
		{"/run", "under /run"},
		{"/nonexistent-rbac-proxy", "resolving"},
	} {
		err := outsideOverlays(tc.dir)
		if tc.fail == "" && err != nil || tc.fail != "" && (err == nil || !strings.Contains(err.Error(), tc.fail)) {
			t.Errorf("outsideOverlays(%s) = %v, want %q", tc.dir, err, tc.fail)
		}
	}
}

// /proc/<pid>/stat's command may hold spaces and parentheses; the state and
// parent come after the last ")".
func TestProcStat(t *testing.T) {
	for _, tc := range []struct {
		stat, state string
		parent      int
	}{
		{"1234 (containerd) S 1 1234 1234 0 -1", "S", 1},
		{"77 (a (b) c) Z 42 77 77 0 -1", "Z", 42},
		{"garbage", "", 0},
	} {
		if got := procState([]byte(tc.stat)); got != tc.state {
			t.Errorf("procState(%q) = %q, want %q", tc.stat, got, tc.state)
		}
		if got := procParent([]byte(tc.stat)); got != tc.parent {
			t.Errorf("procParent(%q) = %d, want %d", tc.stat, got, tc.parent)
		}
	}
}
