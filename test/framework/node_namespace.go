package framework

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// The node's isolation from the host is one private mount namespace that
// containerd, its shims and the kubelet all share (the kubelet mounts Secret
// volumes that containerd must see): /var and /run are overlaid there with
// folders under the node's, so what they write (/var/lib/cni, /run/containerd,
// /run/netns, /var/log/containers, ...) never reaches the host's, and the
// kernel settings the kubelet insists on changing are bind-mounted from copies.

// overlaidDirs are the host folders the node writes through an overlay.
var overlaidDirs = []string{"/var", "/run"}

// kubeletSysctls are the settings the kubelet sets at start (its
// setupKernelTunables); each gets a private copy, so the host's stay.
var kubeletSysctls = []string{
	"vm/overcommit_memory",
	"vm/panic_on_oom",
	"kernel/panic",
	"kernel/panic_on_oops",
	"kernel/keys/root_maxkeys",
	"kernel/keys/root_maxbytes",
}

// mountNamespace is a process holding the private mount namespace; the node's
// programs enter it with nsenter.
type mountNamespace struct {
	holder *process
	// id is the namespace as /proc/<pid>/ns/mnt names it ("mnt:[4026...]"),
	// to tell its processes from the host's.
	id    string
	enter []string // nsenter --mount=... --
}

// startMountNamespace creates the namespace and its mounts under dir/host.
func startMountNamespace(dir string, t nodeTools) (*mountNamespace, error) {
	log, err := os.Create(filepath.Join(dir, "namespace.log"))
	if err != nil {
		return nil, fmt.Errorf("creating the namespace holder's log: %w", err)
	}
	cmd := exec.Command(t.sleep, "infinity")
	// Go makes / private in the new namespace (MS_REC|MS_PRIVATE), so no
	// mount made there propagates to the host.
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	holder, err := startCommand("mount-namespace", log, cmd, (*exec.Cmd).Start)
	if err != nil {
		return nil, err
	}
	ns := &mountNamespace{holder: holder}
	nsPath := fmt.Sprintf("/proc/%d/ns/mnt", holder.cmd.Process.Pid)
	ns.enter = []string{t.nsenter, "--mount=" + nsPath, "--"}
	if ns.id, err = os.Readlink(nsPath); err != nil {
		return ns, fmt.Errorf("reading the node's mount namespace: %w", err)
	}
	if host, err := os.Readlink("/proc/self/ns/mnt"); err != nil || host == ns.id {
		return ns, fmt.Errorf("the node's mount namespace %s is the host's (%s): unshare did not take (%v)", ns.id, host, err)
	}
	for _, d := range overlaidDirs {
		upper := filepath.Join(dir, "host", strings.TrimPrefix(d, "/"))
		for _, sub := range []string{"upper", "work"} {
			if err := os.MkdirAll(filepath.Join(upper, sub), 0o755); err != nil {
				return ns, fmt.Errorf("creating the overlay of %s: %w", d, err)
			}
		}
		opts := fmt.Sprintf("lowerdir=%s,upperdir=%s/upper,workdir=%s/work", d, upper, upper)
		if err := ns.run(t.mount, "-t", "overlay", "overlay", "-o", opts, d); err != nil {
			return ns, fmt.Errorf("overlaying %s in the node's mount namespace: %w", d, err)
		}
	}
	for _, key := range kubeletSysctls {
		path := filepath.Join("/proc/sys", key)
		value, err := os.ReadFile(path)
		if err != nil {
			return ns, fmt.Errorf("reading kernel setting %s: %w", key, err)
		}
		private := filepath.Join(dir, "host", "sysctl", strings.ReplaceAll(key, "/", "."))
		if err := os.MkdirAll(filepath.Dir(private), 0o755); err != nil {
			return ns, err
		}
		if err := os.WriteFile(private, value, 0o644); err != nil {
			return ns, fmt.Errorf("copying kernel setting %s: %w", key, err)
		}
		if err := ns.run(t.mount, "--bind", private, path); err != nil {
			return ns, fmt.Errorf("binding a private copy over kernel setting %s: %w", key, err)
		}
	}
	return ns, nil
}

// command is path with args run inside the namespace.
func (ns *mountNamespace) command(path string, args ...string) *exec.Cmd {
	argv := append(append([]string{}, ns.enter...), path)
	return exec.Command(argv[0], append(argv[1:], args...)...)
}

// run runs a short command inside the namespace.
func (ns *mountNamespace) run(path string, args ...string) error {
	cmd := ns.command(path, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", path, strings.Join(args, " "), err, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}

// stop ends the holder; the namespace goes with its last process.
func (ns *mountNamespace) stop() error {
	return ns.holder.stop(5 * time.Second)
}
