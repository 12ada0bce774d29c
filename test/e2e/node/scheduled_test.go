package node

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// A Deployment's and a DaemonSet's Pods are bound to the node (by
// kube-scheduler) and run to Ready. They are left running: the teardown
// test that follows must remove them.
func TestWorkloads(t *testing.T) {
	ctx := context.Background()
	ns, err := cp.CreateNamespace(ctx, "workloads", nil) // not deleted: the teardown removes its Pods
	if err != nil {
		t.Fatal(err)
	}
	template := func(app string) corev1.PodTemplateSpec {
		return corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
			Spec: corev1.PodSpec{
				Containers: []corev1.Container{{
					Name:            "exporter",
					Image:           exporterImage,
					ImagePullPolicy: corev1.PullNever,
					ReadinessProbe: &corev1.Probe{
						ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/health", Port: intstr.FromInt32(9400)}},
						PeriodSeconds: 1,
					},
				}},
				TerminationGracePeriodSeconds: ptr.To[int64](2),
			},
		}
	}
	selector := func(app string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}
	}
	begin := time.Now()
	if _, err := cp.Clientset.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "exporter"},
		Spec:       appsv1.DeploymentSpec{Replicas: ptr.To[int32](2), Selector: selector("deployment"), Template: template("deployment")},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cp.Clientset.AppsV1().DaemonSets(ns).Create(ctx, &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "exporter"},
		Spec:       appsv1.DaemonSetSpec{Selector: selector("daemonset"), Template: template("daemonset")},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for app, want := range map[string]int{"deployment": 2, "daemonset": 1} {
		pods, err := cp.WaitPodsReady(ctx, ns, "app="+app, want, 2*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods {
			if p.Spec.NodeName != cp.Node.Name {
				t.Errorf("Pod %s of the %s is bound to %q, want %q", p.Name, app, p.Spec.NodeName, cp.Node.Name)
			}
		}
	}
	t.Logf("figure: Deployment (2 replicas) and DaemonSet created → all Pods Ready %s", time.Since(begin).Round(100*time.Millisecond))
}
