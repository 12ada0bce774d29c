package framework

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A test killed outright (go test's -timeout, SIGKILL) cannot tear its node
// down: containerd and the kubelet die with it (their parent-death signal),
// but the shims and the containers they run outlive it, and so do the
// kubelet's cgroups and the bridge. The next node, holding the node lock (so
// no other node of this framework runs), removes them before it starts, when
// they are provably a previous node's: every process in the kubelet's cgroups
// descends from a shim whose command line names a node folder of this
// framework. Anything else (a real kubelet's Pods) refuses the start instead.

// staleNodeMarker is in the command line of every shim, containerd and
// kubelet a node of this framework runs: their sockets and configuration
// live under <TMPDIR>/rbac-proxy-controlplane-*/node/.
var staleNodeMarker = filepath.Join(os.TempDir(), "rbac-proxy-controlplane-")

// removeStaleNode removes a previous node's leftovers, saying what it
// removes, or refuses with what is not a node's of this framework.
func (n *Node) removeStaleNode() error {
	cgroups, err := kubeletCgroups()
	if err != nil {
		return err
	}
	_, bridgeErr := net.InterfaceByName(BridgeName)
	ours, dirs := staleProcesses()
	if len(cgroups) == 0 && bridgeErr != nil && len(ours) == 0 {
		return nil
	}
	for _, cg := range cgroups {
		for _, pid := range cgroupProcs(cg) {
			if _, ok := ours[pid]; !ok {
				return fmt.Errorf("the kubelet cgroups %s hold process %d, which no node of this framework started: another kubelet runs on this machine", cg, pid)
			}
		}
	}
	var procs []string
	for pid, comm := range ours {
		procs = append(procs, fmt.Sprintf("%d (%s)", pid, comm))
	}
	sort.Strings(procs)
	fmt.Fprintf(os.Stderr, "removing what a killed test's node left: processes %v, cgroups %v, bridge %s %t, state in %v\n",
		procs, cgroups, BridgeName, bridgeErr == nil, dirs)
	for try := 0; len(ours) > 0; try++ {
		if try == 50 {
			return fmt.Errorf("a previous node's processes survived SIGKILL: %v", ours)
		}
		for pid := range ours {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
		ours, _ = staleProcesses()
	}
	var errs []error
	errs = append(errs, removeCgroups())
	if bridgeErr == nil {
		errs = append(errs, n.ipCmd("link", "del", BridgeName))
	}
	for _, d := range dirs {
		for _, sub := range []string{"containerd", "kubelet", "host"} {
			errs = append(errs, os.RemoveAll(filepath.Join(d, sub)))
		}
	}
	return errors.Join(errs...)
}

// staleProcesses are the processes whose command line names a node folder
// of this framework, and all their descendants; and those folders.
func staleProcesses() (map[int]string, []string) {
	entries, _ := os.ReadDir("/proc")
	parent := map[int]int{}
	comm := map[int]string{}
	ours := map[int]string{}
	dirSet := map[string]bool{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil || procState(stat) == "Z" {
			continue
		}
		parent[pid] = procParent(stat)
		c, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		comm[pid] = strings.TrimSpace(string(c))
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		for _, arg := range strings.Split(string(cmdline), "\x00") {
			if i := strings.Index(arg, staleNodeMarker); i >= 0 {
				if j := strings.Index(arg[i:], "/node/"); j >= 0 {
					ours[pid] = comm[pid]
					dirSet[arg[i:i+j+len("/node")]] = true
				}
			}
		}
	}
	for pid := range parent {
		for p := parent[pid]; p > 1; p = parent[p] {
			if _, ok := ours[p]; ok {
				ours[pid] = comm[pid]
				break
			}
		}
	}
	var dirs []string
	for d := range dirSet {
		dirs = append(dirs, d)
	}
	return ours, dirs
}

// procParent is the parent pid in /proc/<pid>/stat, the field after the state.
func procParent(stat []byte) int {
	s := string(stat)
	i := strings.LastIndex(s, ")")
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// cgroupProcs lists the processes in a cgroup and all its children.
func cgroupProcs(root string) []int {
	var pids []int
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
		if err != nil {
			return nil
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids
}
