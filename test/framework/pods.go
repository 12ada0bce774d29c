package framework

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PodReady reports whether the Pod's Ready condition, which the kubelet
// sets, is True.
func PodReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// WaitPodsReady waits until n Pods of the label selector in ns are Ready, as
// the kubelet reports them, and returns them. On timeout the error says where
// each Pod stands (DescribePods).
func (cp *ControlPlane) WaitPodsReady(ctx context.Context, ns, selector string, n int, timeout time.Duration) ([]corev1.Pod, error) {
	var pods []corev1.Pod
	err := Eventually(ctx, timeout, fmt.Sprintf("%d Ready Pods %s in %s", n, selector, ns), func(ctx context.Context) (bool, error) {
		list, err := cp.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, err
		}
		pods = pods[:0]
		for _, p := range list.Items {
			if PodReady(&p) {
				pods = append(pods, p)
			}
		}
		if len(pods) == n {
			return true, nil
		}
		return false, fmt.Errorf("%d of %d Pods Ready: %s", len(pods), len(list.Items), DescribePods(list.Items))
	})
	return pods, err
}

// DescribePods says where each Pod stands: its node, phase and every
// container's state, readiness, restarts and last exit (with
// terminationMessagePolicy FallbackToLogsOnError, the tail of its log).
func DescribePods(pods []corev1.Pod) string {
	var b strings.Builder
	for _, p := range pods {
		fmt.Fprintf(&b, "\n  %s on %q %s:", p.Name, p.Spec.NodeName, p.Status.Phase)
		for _, s := range append(append([]corev1.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
			state := "running"
			switch {
			case s.State.Waiting != nil:
				state = "waiting " + s.State.Waiting.Reason + " " + s.State.Waiting.Message
			case s.State.Terminated != nil:
				state = fmt.Sprintf("terminated %s (exit %d) %s", s.State.Terminated.Reason, s.State.Terminated.ExitCode, s.State.Terminated.Message)
			}
			if last := s.LastTerminationState.Terminated; last != nil {
				state += fmt.Sprintf("; last exit %d %s: %s", last.ExitCode, last.Reason, last.Message)
			}
			fmt.Fprintf(&b, " [%s ready=%t restarts=%d %s]", s.Name, s.Ready, s.RestartCount, state)
		}
	}
	return b.String()
}
