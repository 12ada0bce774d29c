package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/rbac-proxy/rbac-proxy/webhook"
	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// BenchmarkAdmissionInMemory measures the handler alone, without a control plane: the caches are
// an in-memory fake client holding the Namespace, the ReplicaSet and the Certificate, and every
// write or live read fails the benchmark. It runs anywhere, and on an idle machine it shows what
// the handler itself costs.
func BenchmarkAdmissionInMemory(b *testing.B) {
	conf := webhook.DefaultConfig("rbac-proxy:bench")
	conf.DefaultIssuer = "ClusterIssuer/bench"
	defaults, err := conf.Compile()
	if err != nil {
		b.Fatal(err)
	}
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: "web-7d4b9c", UID: "rs-uid",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: "deploy-uid", Controller: ptr.To(true)}}}}
	workload := inject.Workload{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: "deploy-uid"}
	pod := benchPod("", rs)
	pol, err := inject.NewPolicy(pod, inject.PolicyInput{Defaults: defaults, Namespace: "bench", Workload: workload})
	if err != nil {
		b.Fatal(err)
	}
	cert := webhook.NewCertificate(pol.TLS.Certificate, "bench", workload)
	cache := fake.NewClientBuilder().WithScheme(webhook.NewScheme()).WithObjects(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench", Labels: map[string]string{inject.LabelInject: inject.NamespaceInjectEnabled}}},
		rs, cert,
	).Build()
	var writes, reviews int
	writer := interceptor.NewClient(fake.NewClientBuilder().WithScheme(webhook.NewScheme()).Build(), interceptor.Funcs{
		Create: func(_ context.Context, _ client.WithWatch, obj client.Object, _ ...client.CreateOption) error {
			if sar, ok := obj.(*authorizationv1.SubjectAccessReview); ok {
				reviews++
				sar.Status.Allowed = true
				return nil
			}
			writes++
			return errors.New("unexpected write")
		},
		Update: func(context.Context, client.WithWatch, client.Object, ...client.UpdateOption) error {
			writes++
			return errors.New("unexpected write")
		},
	})
	h := &webhook.Handler{
		Defaults: defaults,
		Cache:    cache,
		Owners:   &webhook.OwnerResolver{Cache: cache},
		Access:   &webhook.AccessChecker{Client: writer, TTL: time.Hour},
		Log:      logr.Discard(),
	}
	raw, err := json.Marshal(pod)
	if err != nil {
		b.Fatal(err)
	}
	req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID: "bench", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
		Namespace: "bench", Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw},
	}}
	ctx := context.Background()
	h.Handle(ctx, req) // the ServiceAccount check: one review per API the proxy calls
	if reviews != 2 || writes != 0 {
		b.Fatalf("warm-up: %d reviews, %d writes", reviews, writes)
	}
	durations := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		resp := h.Handle(ctx, req)
		durations = append(durations, time.Since(t0))
		if !resp.Allowed || len(resp.Patches) == 0 {
			b.Fatalf("admission %d: allowed=%v, %d patches, %+v", i, resp.Allowed, len(resp.Patches), resp.Result)
		}
	}
	b.StopTimer()
	report(b, durations, int64(writes+reviews-2))
}
