package story

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/rbac-proxy/rbac-proxy/test/framework"
	"github.com/rbac-proxy/rbac-proxy/test/story"
	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// TestStory tells the story of `make demo` on the package's control plane,
// asserts every check of it, then goes on with what a user tries next. The
// subtests share the running story, so they run in order.
func TestStory(t *testing.T) {
	ctx := t.Context()
	report, err := story.Run(ctx, story.Options{Out: t.Output(), ControlPlane: cp, KeepRunning: true})
	if err != nil {
		t.Fatalf("the story could not be told: %v", err)
	}
	env := report.Env
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("webhook log:\n%s", env.Injector.Log())
			t.Logf("proxy log (%s):\n%s", env.SAR.Deployment, env.SAR.Log())
			t.Logf("proxy log (%s):\n%s", env.Static.Deployment, env.Static.Log())
		}
		if err := env.Stop(); err != nil {
			t.Errorf("stopping the story: %v", err)
		}
	})
	if len(report.Checks) < 11 {
		t.Errorf("the story made %d checks, want at least 11", len(report.Checks))
	}
	for _, c := range report.Checks {
		t.Run(c.Name, func(t *testing.T) {
			if !c.OK {
				t.Errorf("expected %s, got %s", c.Expected, c.Got)
			}
		})
	}
	t.Run("rotation: the proxy serves the renewed certificate without restart", func(t *testing.T) {
		testRotation(t, env)
	})
	t.Run("a namespace without the label is untouched", func(t *testing.T) {
		testUnlabelled(t, env)
	})
	t.Run("deleting the Deployment removes its Certificate and Secret", func(t *testing.T) {
		testDeletion(t, env)
	})
}

// testRotation renews the SAR proxy's Certificate the way `cmctl renew` does,
// projects the new Secret with kubelet's ..data swap, and expects the running
// proxy to serve the new certificate within 10s while Prometheus keeps
// scraping without a single failure.
func testRotation(t *testing.T, env *story.Env) {
	ctx := t.Context()
	p := env.SAR
	before, err := p.ServingSerial(ctx)
	if err != nil {
		t.Fatalf("reading the served certificate: %v", err)
	}
	old, err := cp.Clientset.CoreV1().Secrets(p.Namespace).Get(ctx, p.TLSSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// Prometheus scrapes every 100ms throughout.
	var scrapes, failures atomic.Int64
	var firstFailure atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			status, _, err := p.Scrape(ctx, env.PrometheusToken, nil)
			scrapes.Add(1)
			if err != nil || status != 200 {
				failures.Add(1)
				firstFailure.CompareAndSwap(nil, []any{status, err})
			}
		}
	})
	var once sync.Once
	stopScraping := func() { once.Do(func() { close(stop); wg.Wait() }) }
	defer stopScraping()

	if err := cp.RenewCertificate(ctx, p.Namespace, p.TLSSecret); err != nil {
		t.Fatal(err)
	}
	var renewed *corev1.Secret
	err = framework.Eventually(ctx, 90*time.Second, "cert-manager to renew Secret "+p.TLSSecret, func(ctx context.Context) (bool, error) {
		s, err := cp.Clientset.CoreV1().Secrets(p.Namespace).Get(ctx, p.TLSSecret, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		renewed = s
		return string(s.Data[corev1.TLSCertKey]) != string(old.Data[corev1.TLSCertKey]), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.UpdateTLS(renewed); err != nil {
		t.Fatalf("projecting the renewed Secret: %v", err)
	}
	swapped := time.Now()
	var after interface{ String() string }
	err = framework.Eventually(ctx, 10*time.Second, "the proxy to serve the renewed certificate", func(ctx context.Context) (bool, error) {
		serial, err := p.ServingSerial(ctx)
		if err != nil {
			return false, err
		}
		after = serial
		return serial.Cmp(before) != 0, nil
	})
	if err != nil {
		t.Fatalf("%v (still serving serial %s)", err, before)
	}
	t.Logf("serial %s → %s, served %s after the ..data swap", before, after, time.Since(swapped).Round(time.Millisecond))
	// A few more scrapes on the new certificate before counting.
	time.Sleep(500 * time.Millisecond)
	stopScraping()
	if !p.Running() {
		t.Error("the proxy exited during the rotation")
	}
	if n := scrapes.Load(); n < 5 {
		t.Errorf("only %d scrapes during the rotation", n)
	}
	if n := failures.Load(); n > 0 {
		t.Errorf("%d of %d scrapes failed during the rotation; first: %v", n, scrapes.Load(), firstFailure.Load())
	}
	t.Logf("%d scrapes during the rotation, none failed", scrapes.Load())
}

// testUnlabelled: the same exporter in a namespace without the label gets no
// proxy and no Certificate.
func testUnlabelled(t *testing.T, env *story.Env) {
	ctx := t.Context()
	ns, err := cp.CreateNamespace(ctx, "plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	dep := story.ExporterDeployment(ns, story.SARExporter, nil)
	dep.Spec.Template.Spec.ServiceAccountName = ""
	if err := cp.Client.Create(ctx, dep); err != nil {
		t.Fatal(err)
	}
	pod, err := story.WaitForPod(ctx, cp, ns, story.SARExporter)
	if err != nil {
		t.Fatal(err)
	}
	if c := inject.ProxyContainer(pod); c != nil {
		t.Errorf("a Pod in namespace %s without the label was injected: %+v", ns, c)
	}
	if s, ok := pod.Annotations[inject.AnnotationStatus]; ok {
		t.Errorf("the Pod carries %s=%q", inject.AnnotationStatus, s)
	}
	if len(pod.Spec.InitContainers) != 0 || len(pod.Spec.Containers) != 1 || pod.Spec.Containers[0].Ports[0].Name != "metrics" {
		t.Errorf("the Pod's containers were changed: %+v %+v", pod.Spec.InitContainers, pod.Spec.Containers)
	}
	certs := &cmv1.CertificateList{}
	if err := cp.Client.List(ctx, certs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if len(certs.Items) != 0 {
		t.Errorf("namespace %s has %d Certificates, want none", ns, len(certs.Items))
	}
}

// testDeletion deletes the mTLS exporter's Deployment: the Certificate it owns
// is garbage-collected by kube-controller-manager, and the Secret, owned by the
// Certificate (cert-manager's --enable-certificate-owner-ref), with it.
func testDeletion(t *testing.T, env *story.Env) {
	ctx := t.Context()
	p := env.Static
	cert := &cmv1.Certificate{}
	if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: p.Namespace, Name: p.TLSSecret}, cert); err != nil {
		t.Fatal(err)
	}
	dep, err := cp.Clientset.AppsV1().Deployments(p.Namespace).Get(ctx, p.Deployment, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	owned := false
	for _, ref := range cert.OwnerReferences {
		owned = owned || (ref.Kind == "Deployment" && ref.Name == dep.Name && ref.UID == dep.UID)
	}
	if !owned {
		t.Errorf("Certificate %s is owned by %+v, want Deployment %s (uid %s)", cert.Name, cert.OwnerReferences, dep.Name, dep.UID)
	}
	secret, err := cp.Clientset.CoreV1().Secrets(p.Namespace).Get(ctx, p.TLSSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ref := metav1.GetControllerOf(secret); ref == nil || ref.Kind != cmv1.CertificateKind {
		t.Errorf("Secret %s is controlled by %+v, want its Certificate", secret.Name, ref)
	}

	// kubectl delete deployment: background propagation.
	err = cp.Clientset.AppsV1().Deployments(p.Namespace).Delete(ctx, p.Deployment,
		metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	gone := func(obj client.Object, what string) {
		err := framework.Eventually(ctx, 60*time.Second, what+" to be garbage-collected", func(ctx context.Context) (bool, error) {
			err := cp.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj)
			return apierrors.IsNotFound(err), nil
		})
		if err != nil {
			t.Error(err)
			return
		}
		t.Logf("%s gone %s after the Deployment was deleted", what, time.Since(start).Round(time.Millisecond))
	}
	gone(&cmv1.Certificate{ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.TLSSecret}}, "Certificate "+p.TLSSecret)
	gone(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.TLSSecret}}, "Secret "+p.TLSSecret)
	// The other exporter keeps its Certificate.
	if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: env.SAR.Namespace, Name: env.SAR.TLSSecret}, &cmv1.Certificate{}); err != nil {
		t.Errorf("Certificate %s of the other exporter: %v", env.SAR.TLSSecret, err)
	}
}
