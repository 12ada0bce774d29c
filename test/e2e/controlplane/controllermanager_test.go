package controlplane

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/rbac-proxy/rbac-proxy/test/framework"
)

// A Deployment only gets Pods when kube-controller-manager's deployment and
// replicaset controllers run: nothing else in the control plane creates them.
func TestDeploymentGetsPodsFromControllerManager(t *testing.T) {
	ctx := t.Context()
	ns, err := cp.CreateNamespace(ctx, "deploy", nil)
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": "exporter"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "exporter"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "exporter", Image: "exporter:test",
					Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: 9400}},
				}}},
			},
		},
	}
	if _, err := cp.Clientset.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the Deployment: %v", err)
	}
	err = framework.Eventually(ctx, time.Minute, "2 Pods owned by the Deployment's ReplicaSet", func(ctx context.Context) (bool, error) {
		pods, err := cp.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=exporter"})
		if err != nil {
			return false, err
		}
		owned := 0
		for _, p := range pods.Items {
			if ref := metav1.GetControllerOf(&p); ref != nil && ref.Kind == "ReplicaSet" {
				owned++
			}
		}
		return owned == 2, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
