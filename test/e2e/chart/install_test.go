package chart

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/rbac-proxy/rbac-proxy/test/framework"
	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// helm install on the real control plane: every object is accepted,
// cert-manager issues the webhook's certificate, cainjector fills the
// caBundle (InstallChart waits for both), the webhook (a local process with
// the chart's own arguments) injects a Pod created afterwards, and helm
// uninstall removes every object the release created.
func TestInstallInjectUninstall(t *testing.T) {
	ctx := t.Context()
	bin, err := framework.Build(ctx, "./cmd/webhook")
	if err != nil {
		t.Fatal(err)
	}
	inj, err := cp.InstallChart(ctx, bin)
	if err != nil {
		t.Fatalf("installing the chart: %v", err)
	}
	defer func() {
		if t.Failed() {
			t.Logf("webhook log:\n%s", inj.Log())
		}
	}()
	if len(inj.Objects) < 10 {
		t.Fatalf("the release holds %d objects, want at least 10", len(inj.Objects))
	}

	ns, err := cp.CreateNamespace(ctx, "gpu", map[string]string{"rbac-proxy.io/inject": "enabled"})
	if err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "dcgm-exporter"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "exporter", Image: "dcgm-exporter:test",
			Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: 9400}},
		}}},
	}
	if err := cp.Client.Create(ctx, pod); err != nil {
		t.Fatalf("creating a Pod in a labelled namespace: %v", err)
	}
	if !hasProxy(pod) {
		t.Fatalf("the Pod was admitted without the proxy: %+v", pod.Spec)
	}

	if out, err := cp.Helm(ctx, "uninstall", framework.ReleaseName, "--namespace", framework.ReleaseNamespace, "--wait"); err != nil {
		t.Fatalf("helm uninstall: %v\n%s", err, out)
	}
	for key, obj := range inj.Objects {
		err := framework.Eventually(ctx, 30*time.Second, key+" to be deleted", func(ctx context.Context) (bool, error) {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(obj.GroupVersionKind())
			err := cp.Client.Get(ctx, client.ObjectKeyFromObject(obj), u)
			return apierrors.IsNotFound(err), nil
		})
		if err != nil {
			t.Error(err)
		}
	}
	// With the webhook configuration gone, Pods are created untouched.
	plain := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "after-uninstall"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "exporter", Image: "dcgm-exporter:test"}}},
	}
	if err := cp.Client.Create(ctx, plain); err != nil {
		t.Fatalf("creating a Pod after uninstall: %v", err)
	}
	if hasProxy(plain) {
		t.Fatal("a Pod created after helm uninstall was injected")
	}
}

// hasProxy: the Pod carries the proxy container and the injected status.
func hasProxy(pod *corev1.Pod) bool {
	return inject.ProxyContainer(pod) != nil && pod.Annotations[inject.AnnotationStatus] == inject.StatusInjected
}
