package realnode

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	corev1 "k8s.io/api/core/v1"
)

// containerStatus returns the status of the init or regular container name.
func containerStatus(p *corev1.Pod, name string) *corev1.ContainerStatus {
	for _, ss := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for i := range ss {
			if ss[i].Name == name {
				return &ss[i]
			}
		}
	}
	return nil
}

// container returns the spec of the init or regular container name.
func container(p *corev1.Pod, name string) *corev1.Container {
	for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for i := range cs {
			if cs[i].Name == name {
				return &cs[i]
			}
		}
	}
	return nil
}

// containerPIDs returns the host PIDs of a running container, found by its cgroup: the kubelet
// (cgroupfs driver) puts each container in .../pod<UID>/<container ID>.
func containerPIDs(containerID string) ([]int, error) {
	_, id, ok := strings.Cut(containerID, "://")
	if !ok || id == "" {
		return nil, fmt.Errorf("container ID %q is not runtime://ID", containerID)
	}
	dirs, err := filepath.Glob("/proc/[0-9]*/cgroup")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, path := range dirs {
		if inCgroup(path, id) {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(path)))
			pids = append(pids, pid)
		}
	}
	if len(pids) == 0 {
		return nil, fmt.Errorf("no process of container %s in /proc", id)
	}
	return pids, nil
}

func inCgroup(path, id string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false // the process has gone
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasSuffix(sc.Text(), "/"+id) {
			return true
		}
	}
	return false
}

// killContainer sends SIGKILL to every process of the container, as the kernel's OOM killer
// or a crash would end it.
func killContainer(containerID string) error {
	pids, err := containerPIDs(containerID)
	if err != nil {
		return err
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
			return fmt.Errorf("kill -9 %d: %w", pid, err)
		}
	}
	return nil
}

// processUIDs returns the real user ID of each process of the container, read from /proc.
func processUIDs(containerID string) ([]int, error) {
	pids, err := containerPIDs(containerID)
	if err != nil {
		return nil, err
	}
	var uids []int
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
				f := strings.Fields(rest)
				if len(f) > 0 {
					uid, _ := strconv.Atoi(f[0])
					uids = append(uids, uid)
				}
			}
		}
	}
	return uids, nil
}
