package framework

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// CheckClean's detectors see what a node would leave: a process naming the
// node's folder, a mount under it (as a leaked overlay or bind mount would be).
func TestLeftoverDetectors(t *testing.T) {
	n := &Node{Dir: t.TempDir()}
	// Only what names this folder: a node of another package may run
	// meanwhile, its Pods in the kubelet's cgroups.
	naming := func() []nodeProcess {
		var out []nodeProcess
		for _, p := range n.processes() {
			if strings.Contains(p.why, n.Dir) {
				out = append(out, p)
			}
		}
		return out
	}
	if ps := naming(); len(ps) != 0 {
		t.Fatalf("processes before anything ran: %v", ps)
	}
	log := filepath.Join(n.Dir, "some.log")
	if err := os.WriteFile(log, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tail := exec.Command("tail", "-f", log)
	if err := tail.Start(); err != nil {
		t.Fatal(err)
	}
	var ps []nodeProcess
	for try := 0; try < 50 && len(ps) == 0; try++ { // until it has exec'd
		time.Sleep(20 * time.Millisecond)
		ps = naming()
	}
	_ = tail.Process.Kill()
	_ = tail.Wait()
	if len(ps) != 1 || ps[0].pid != tail.Process.Pid {
		t.Errorf("processes with a tail -f naming the node's folder = %v, want that tail", ps)
	}
	if ps := naming(); len(ps) != 0 {
		t.Errorf("processes after it ended: %v", ps)
	}

	if os.Geteuid() != 0 {
		t.Skip("mounting needs root")
	}
	target := filepath.Join(n.Dir, "mnt")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", target, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	m := n.mounts()
	if err := syscall.Unmount(target, 0); err != nil {
		t.Fatal(err)
	}
	if len(m) != 1 || !strings.Contains(m[0], target) {
		t.Errorf("mounts with a tmpfs on %s = %v, want that one", target, m)
	}
	if m := n.mounts(); len(m) != 0 {
		t.Errorf("mounts after unmounting: %v", m)
	}
}
