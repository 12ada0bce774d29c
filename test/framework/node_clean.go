package framework

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// What the node may leave on the host, found the same way before it starts
// (something there already refuses the start: it is not the node's to remove)
// and after it stopped (CheckClean): processes, mounts, cgroups, network
// interfaces and network namespaces.

// nodeProcess is a process that belongs to the node, and why it does.
type nodeProcess struct {
	pid       int
	comm, why string
}

func (p nodeProcess) String() string { return fmt.Sprintf("%d (%s, %s)", p.pid, p.comm, p.why) }

// processes lists the node's live processes: those in its mount namespace
// (containerd, shims, the kubelet), in the kubelet's cgroups (Pods'
// sandboxes and containers, which have mount namespaces of their own), or
// whose command line names the node's folder. Zombies hold nothing but
// their pid and are not listed.
func (n *Node) processes() []nodeProcess {
	entries, _ := os.ReadDir("/proc")
	var out []nodeProcess
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		dir := filepath.Join("/proc", e.Name())
		stat, err := os.ReadFile(filepath.Join(dir, "stat"))
		if err != nil || procState(stat) == "Z" {
			continue
		}
		comm, _ := os.ReadFile(filepath.Join(dir, "comm"))
		p := nodeProcess{pid: pid, comm: strings.TrimSpace(string(comm))}
		if n.ns != nil {
			if id, err := os.Readlink(filepath.Join(dir, "ns", "mnt")); err == nil && id == n.ns.id {
				p.why = "in the node's mount namespace"
			}
		}
		if p.why == "" {
			if cg, err := os.ReadFile(filepath.Join(dir, "cgroup")); err == nil && strings.Contains(string(cg), ":/"+kubeletCgroupName) {
				p.why = "in the kubelet's cgroups"
			}
		}
		if p.why == "" {
			if cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil && strings.Contains(string(cmdline), n.Dir) {
				p.why = "its command line names " + n.Dir
			}
		}
		if p.why != "" {
			out = append(out, p)
		}
	}
	return out
}

// procState is the state letter in /proc/<pid>/stat, after the command in
// parentheses (which may hold spaces and parentheses itself).
func procState(stat []byte) string {
	s := string(stat)
	i := strings.LastIndex(s, ")")
	if i < 0 || i+3 > len(s) {
		return ""
	}
	return s[i+2 : i+3]
}

// kubeletCgroupName is the cgroup the kubelet puts every Pod under (its
// cgroupRoot is /, cgroupsPerQOS is on).
const kubeletCgroupName = "kubepods"

// kubeletCgroups lists kubepods in every cgroup hierarchy.
func kubeletCgroups() ([]string, error) {
	hierarchies, err := cgroupHierarchies()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, h := range hierarchies {
		p := filepath.Join(h, kubeletCgroupName)
		if _, err := os.Stat(p); err == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// hostSnapshot is what the host had before the node: interfaces, named
// network namespaces and which of hostPaths existed, so that new ones can be
// told apart.
type hostSnapshot struct {
	interfaces []string
	netns      []string
	paths      []string
	sysctls    map[string]string // the kubelet's kernel settings, as the host has them
}

// hostPaths are where containerd and the kubelet write by default, and so
// would on the host without the node's overlays and settings.
var hostPaths = []string{
	"/var/lib/kubelet", "/var/lib/containerd", "/var/lib/cni", "/var/log/containers", "/var/log/pods",
	"/run/containerd", "/run/netns", "/usr/libexec/kubernetes", "/opt/containerd", "/etc/cni/net.d",
}

func snapshotHost() (hostSnapshot, error) {
	ifaces, err := interfaceNames()
	if err != nil {
		return hostSnapshot{}, err
	}
	return hostSnapshot{interfaces: ifaces, netns: namedNetns(), paths: existingPaths(), sysctls: hostSysctls()}, nil
}

func hostSysctls() map[string]string {
	out := map[string]string{}
	for _, key := range kubeletSysctls {
		b, err := os.ReadFile(filepath.Join("/proc/sys", key))
		if err != nil {
			out[key] = "(" + err.Error() + ")"
			continue
		}
		out[key] = strings.TrimSpace(string(b))
	}
	return out
}

func existingPaths() []string {
	var out []string
	for _, p := range hostPaths {
		if _, err := os.Lstat(p); err == nil {
			out = append(out, p)
		}
	}
	return out
}

func interfaceNames() ([]string, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("listing the host's interfaces: %w", err)
	}
	var names []string
	for _, i := range ifaces {
		names = append(names, i.Name)
	}
	return names, nil
}

// namedNetns are the host's named network namespaces (ip netns, and where
// containerd would put Pods' without the node's /run overlay).
func namedNetns() []string {
	var out []string
	for _, dir := range []string{"/run/netns", "/var/run/netns"} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}

// checkNoLeftovers refuses to start where a kubelet's cgroups or the bridge
// are still there (after removeStaleNode: not a node's of this framework).
func checkNoLeftovers() error {
	var found []string
	if cgs, err := kubeletCgroups(); err != nil {
		return err
	} else if len(cgs) > 0 {
		found = append(found, "kubelet cgroups "+strings.Join(cgs, ", "))
	}
	if _, err := net.InterfaceByName(BridgeName); err == nil {
		found = append(found, "interface "+BridgeName)
	}
	if len(found) > 0 {
		return fmt.Errorf("a node's leftovers are on this machine (%s): not a previous node's of this framework, so not removed", strings.Join(found, "; "))
	}
	return nil
}

// CheckClean reports everything the stopped node left on the host: a process
// (containerd, a shim, the kubelet, a sandbox or container), a mount of the
// node's (none are visible on the host unless one leaked out of the
// namespace), a cgroup, the bridge or a veth, a named network namespace, one
// of containerd's or the kubelet's default folders that was not there before,
// a kernel setting the kubelet sets changed on the host, or its runtime state
// on disk. Pods' network namespaces have no name on the
// host: they end with their sandboxes' processes and their veths with them,
// which the process and interface checks see.
func (n *Node) CheckClean() error {
	var errs []error
	if ps := n.processes(); len(ps) > 0 {
		errs = append(errs, fmt.Errorf("processes left: %v", ps))
	}
	if m := n.mounts(); len(m) > 0 {
		errs = append(errs, fmt.Errorf("mounts left: %v", m))
	}
	if cgs, err := kubeletCgroups(); err != nil {
		errs = append(errs, err)
	} else if len(cgs) > 0 {
		errs = append(errs, fmt.Errorf("cgroups left: %v", cgs))
	}
	if ifaces, err := interfaceNames(); err != nil {
		errs = append(errs, err)
	} else if extra := added(n.before.interfaces, ifaces); len(extra) > 0 {
		errs = append(errs, fmt.Errorf("network interfaces left: %v", extra))
	}
	if extra := added(n.before.netns, namedNetns()); len(extra) > 0 {
		errs = append(errs, fmt.Errorf("network namespaces left: %v", extra))
	}
	if extra := added(n.before.paths, existingPaths()); len(extra) > 0 {
		errs = append(errs, fmt.Errorf("written on the host, outside the node's overlays: %v", extra))
	}
	for key, now := range hostSysctls() {
		if was := n.before.sysctls[key]; now != was {
			errs = append(errs, fmt.Errorf("kernel setting %s changed on the host: %s, was %s", key, now, was))
		}
	}
	for _, d := range []string{"containerd", "kubelet", "host"} {
		if _, err := os.Stat(filepath.Join(n.Dir, d)); err == nil {
			errs = append(errs, fmt.Errorf("the node's %s state is left in %s", d, n.Dir))
		}
	}
	return errors.Join(errs...)
}

// mounts lists the host's mounts that name the node's folder anywhere (mount
// point, root, source, or options such as an overlay's upperdir: the /var
// and /run overlays) or sit on a kernel setting it copies.
func (n *Node) mounts() []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return []string{"reading /proc/self/mountinfo: " + err.Error()}
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		point := f[4]
		sysctl := slices.ContainsFunc(kubeletSysctls, func(k string) bool { return point == filepath.Join("/proc/sys", k) })
		if strings.Contains(line, n.Dir) || sysctl {
			out = append(out, line)
		}
	}
	return out
}

func added(before, after []string) []string {
	var out []string
	for _, a := range after {
		if !slices.Contains(before, a) {
			out = append(out, a)
		}
	}
	return out
}
