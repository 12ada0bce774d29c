package framework

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// The node's teardown goes from the inside out, each step also after a start
// that failed midway (a step with nothing to do does nothing): the kubelet
// removes its Pods (containers, sandboxes, CNI), the kubelet stops, whatever
// containers it left are removed through containerd, containerd stops, every
// process still in the node's mount namespace or its cgroups is killed (shims,
// containers), the namespace ends with its holder, the kubelet's cgroups are
// removed. The bridge goes after the API server (it listens there), in
// removeNetwork.

// TeardownTook is how long the last teardown took, for the figures.
func (n *Node) TeardownTook() time.Duration { return n.teardownTook }

// stop tears the node down; clientset reaches the API server, still running.
func (n *Node) stop(clientset kubernetes.Interface) error {
	begin := time.Now()
	var errs []error
	if n.ns != nil && clientset != nil && n.kubeletRunning() {
		errs = append(errs, n.deletePods(clientset, 45*time.Second))
	}
	for i := len(n.procs) - 1; i >= 0; i-- {
		p := n.procs[i]
		if p.name == "containerd" {
			errs = append(errs, n.removeContainers())
		}
		errs = append(errs, p.stop(20*time.Second))
	}
	if n.ns != nil { // else nothing of the node ran, and what is there is not ours
		errs = append(errs, n.killLeftovers(), n.ns.stop(), removeCgroups())
	}
	// What containerd and the kubelet kept; the logs and configuration stay
	// with the control plane's folder.
	for _, d := range []string{"containerd", "kubelet", "host", "cni-ipam", "pod-logs"} {
		if err := os.RemoveAll(filepath.Join(n.Dir, d)); err != nil {
			errs = append(errs, fmt.Errorf("removing the node's %s: %w", d, err))
		}
	}
	n.teardownTook = time.Since(begin)
	return errors.Join(errs...)
}

// removeNetwork removes the bridge once the API server no longer listens on
// it, and lets the next node on this machine start.
func (n *Node) removeNetwork() error {
	err := n.deleteBridge()
	if n.unlock != nil {
		n.unlock()
		n.unlock = nil
	}
	return err
}

func (n *Node) kubeletRunning() bool {
	p := n.procOf("kubelet")
	if p == nil {
		return false
	}
	done, _ := p.exited()
	return !done
}

// deletePods deletes every Pod bound to the node and waits until the kubelet
// has stopped their containers and removed them.
func (n *Node) deletePods(clientset kubernetes.Interface, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	onNode := metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.nodeName", n.Name).String()}
	pods, err := clientset.CoreV1().Pods(metav1.NamespaceAll).List(ctx, onNode)
	if err != nil {
		return fmt.Errorf("listing the node's Pods: %w", err)
	}
	for _, p := range pods.Items {
		err := clientset.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](2)})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting Pod %s/%s: %w", p.Namespace, p.Name, err)
		}
	}
	var left []string
	err = waitFor(ctx, 250*time.Millisecond, func(ctx context.Context) (bool, error) {
		pods, err := clientset.CoreV1().Pods(metav1.NamespaceAll).List(ctx, onNode)
		if err != nil {
			return false, err
		}
		left = left[:0]
		for _, p := range pods.Items {
			left = append(left, p.Namespace+"/"+p.Name)
		}
		return len(left) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("the kubelet did not remove Pods %v within %s: %w", left, timeout, err)
	}
	return nil
}

// removeContainers kills and removes, through containerd, every task and
// container the kubelet left behind.
func (n *Node) removeContainers() error {
	if done, _ := n.procOf("containerd").exited(); done {
		return nil
	}
	ctx := context.Background()
	var errs []error
	tasks, err := n.ctr(ctx, "tasks", "ls", "--quiet")
	if err != nil {
		return fmt.Errorf("listing containerd's tasks: %w", err)
	}
	for _, id := range strings.Fields(tasks) {
		// A kill of a stopped task fails; the delete below tells.
		_, _ = n.ctr(ctx, "tasks", "kill", "--signal", "SIGKILL", id)
		if _, err := n.ctr(ctx, "tasks", "delete", "--force", id); err != nil {
			errs = append(errs, fmt.Errorf("removing task %s: %w", id, err))
		}
	}
	containers, err := n.ctr(ctx, "containers", "ls", "--quiet")
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("listing containerd's containers: %w", err))...)
	}
	for _, id := range strings.Fields(containers) {
		if _, err := n.ctr(ctx, "containers", "delete", id); err != nil {
			errs = append(errs, fmt.Errorf("removing container %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

// killLeftovers kills every process of the node still running (shims and
// containers outlive containerd) and waits until they are gone.
func (n *Node) killLeftovers() error {
	var left []nodeProcess
	for try := 0; try < 50; try++ {
		left = n.processes()
		if len(left) == 0 {
			return nil
		}
		for _, p := range left {
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("processes of the node survived SIGKILL: %v", left)
}

// removeCgroups removes the kubelet's cgroups (kubepods and everything under
// it) in every hierarchy, deepest first: a cgroup is removed with rmdir once
// it has no processes and no children.
func removeCgroups() error {
	roots, err := kubeletCgroups()
	if err != nil {
		return err
	}
	var errs []error
	for _, root := range roots {
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			var err error
			for try := 0; try < 20; try++ {
				if err = syscall.Rmdir(d); err == nil || errors.Is(err, syscall.ENOENT) {
					err = nil
					break
				}
				time.Sleep(100 * time.Millisecond) // a killed process leaves its cgroup a moment later
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("removing cgroup %s: %w", d, err))
			}
		}
	}
	return errors.Join(errs...)
}
