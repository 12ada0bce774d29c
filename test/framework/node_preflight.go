package framework

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// CNIPluginDir is where Debian's containernetworking-plugins puts the CNI
// plugins (make test-deps installs them).
const CNIPluginDir = "/usr/lib/cni"

// nodeTools are the programs a node runs, found before anything starts.
type nodeTools struct {
	containerd, ctr, nsenter, mount, ip, sleep string
	kubelet, scheduler                         string
}

// preflight checks that this machine can run a node and finds its programs.
// Every missing piece is named; the error wraps ErrNoNode.
func preflight(bin, dir string) (nodeTools, error) {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, fmt.Sprintf("root (running as uid %d): containerd, the kubelet and the bridge need it", os.Geteuid()))
	}
	var t nodeTools
	look := func(dst *string, name, pkg string) {
		p, err := exec.LookPath(name)
		if err != nil {
			missing = append(missing, fmt.Sprintf("%s on PATH (Debian package %s; make test-deps installs it)", name, pkg))
			return
		}
		*dst = p
	}
	look(&t.containerd, "containerd", "containerd")
	look(&t.ctr, "ctr", "containerd")
	var shim, runc string
	look(&shim, "containerd-shim-runc-v2", "containerd")
	look(&runc, "runc", "runc")
	look(&t.nsenter, "nsenter", "util-linux")
	look(&t.mount, "mount", "mount")
	look(&t.ip, "ip", "iproute2")
	look(&t.sleep, "sleep", "coreutils")
	for _, plugin := range []string{"bridge", "host-local", "loopback"} {
		if _, err := os.Stat(filepath.Join(CNIPluginDir, plugin)); err != nil {
			missing = append(missing, fmt.Sprintf("CNI plugin %s in %s (Debian package containernetworking-plugins)", plugin, CNIPluginDir))
		}
	}
	for dst, name := range map[*string]string{&t.kubelet: "kubelet", &t.scheduler: "kube-scheduler"} {
		p := filepath.Join(bin, name)
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, fmt.Sprintf("%s (run `make tools`)", p))
			continue
		}
		*dst = p
	}
	if !filesystemSupported("overlay") {
		missing = append(missing, "the overlay filesystem (/proc/filesystems): /var and /run are overlaid and containerd's snapshotter is overlayfs")
	}
	if os.Geteuid() == 0 {
		missing = append(missing, cgroupsWritable()...)
	}
	if len(missing) > 0 {
		return t, fmt.Errorf("%w: missing %s", ErrNoNode, strings.Join(missing, "; "))
	}
	return t, outsideOverlays(filepath.Dir(dir))
}

// outsideOverlays refuses a node folder under /var or /run: the node
// overlays them, which would hide the folder from containerd and the kubelet.
func outsideOverlays(dir string) error {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return fmt.Errorf("resolving the node's folder: %w", err)
	}
	for _, overlaid := range overlaidDirs {
		if real == overlaid || strings.HasPrefix(real, overlaid+"/") {
			return fmt.Errorf("the node's folder %s is under %s, which the node overlays: set TMPDIR elsewhere", real, overlaid)
		}
	}
	return nil
}

func filesystemSupported(fs string) bool {
	b, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[len(f)-1] == fs {
			return true
		}
	}
	return false
}

// cgroupsWritable tries to create a cgroup in every hierarchy the kubelet
// will use, as it will.
func cgroupsWritable() []string {
	hierarchies, err := cgroupHierarchies()
	if err != nil {
		return []string{err.Error()}
	}
	var missing []string
	probe := fmt.Sprintf("rbac-proxy-probe-%d", os.Getpid())
	for _, h := range hierarchies {
		p := filepath.Join(h, probe)
		if err := os.Mkdir(p, 0o755); err != nil {
			missing = append(missing, fmt.Sprintf("a writable cgroup hierarchy %s (%v)", h, err))
			continue
		}
		_ = os.Remove(p)
	}
	return missing
}

// cgroupHierarchies lists the mounted cgroup hierarchies: each v1 controller's
// folder and the unified one, or /sys/fs/cgroup alone on a v2-only machine.
func cgroupHierarchies() ([]string, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(cgroupRoot, &st); err != nil {
		return nil, fmt.Errorf("cgroups mounted at %s (%v)", cgroupRoot, err)
	}
	const cgroup2Magic = 0x63677270
	if st.Type == cgroup2Magic {
		return []string{cgroupRoot}, nil
	}
	entries, err := os.ReadDir(cgroupRoot)
	if err != nil {
		return nil, fmt.Errorf("cgroups mounted at %s (%v)", cgroupRoot, err)
	}
	var hs []string
	for _, e := range entries {
		p := filepath.Join(cgroupRoot, e.Name())
		// Symlinks like cpu,cpuacct → cpu point at a hierarchy listed anyway.
		if e.IsDir() && e.Type()&os.ModeSymlink == 0 {
			hs = append(hs, p)
		}
	}
	if len(hs) == 0 {
		return nil, fmt.Errorf("cgroup hierarchies under %s (none mounted)", cgroupRoot)
	}
	return hs, nil
}

const cgroupRoot = "/sys/fs/cgroup"

// nodeLockPath serialises real nodes on this machine: the bridge's name and
// address and port 443 on it are fixed, so two test packages (go test runs
// them in parallel) must take turns. A flock goes with its process, so a
// killed test leaves no stale lock.
var nodeLockPath = filepath.Join(os.TempDir(), "rbac-proxy-node.lock")

// lockNode waits until no other real node runs on this machine, or ctx ends.
func lockNode(ctx context.Context) (func(), error) {
	f, err := os.OpenFile(nodeLockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the node lock %s: %w", nodeLockPath, err)
	}
	said := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", nodeLockPath, err)
		}
		if !said {
			fmt.Fprintf(os.Stderr, "waiting for another real node on this machine to stop (lock %s)\n", nodeLockPath)
			said = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for another real node to stop (lock %s): %w", nodeLockPath, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}
