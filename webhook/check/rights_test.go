package check

import (
	"context"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// TestRightsRules: a caller with Rules() and nothing more checks a whole cluster with nothing left
// unchecked, the injector's Deployment found; and every resource Rules grants is one check reads.
func TestRightsRules(t *testing.T) {
	d := testDefaults(t)
	scheme, err := NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	// The API server's authorizer, with Rules() as the caller's only rights; it notes what was
	// asked, as GROUP/RESOURCE.
	asked := map[string]bool{}
	authorize := func(verb string, obj runtime.Object) error {
		gvk, err := apiutil.GVKForObject(obj, scheme)
		if err != nil {
			t.Fatal(err)
		}
		gvr, _ := meta.UnsafeGuessKindToResource(gvk.GroupVersion().WithKind(strings.TrimSuffix(gvk.Kind, "List")))
		asked[gvr.Group+"/"+gvr.Resource] = true
		for _, r := range Rules() {
			if slices.Contains(r.APIGroups, gvr.Group) && slices.Contains(r.Resources, gvr.Resource) && slices.Contains(r.Verbs, verb) {
				return nil
			}
		}
		return forbidden(gvr.Resource)
	}
	dcgm, dcgmRS := deployment("dcgm", appTemplate(nil, map[string]string{inject.AnnotationInject: "true", inject.AnnotationClientCA: "secret:scrapers-ca"}))
	web, webRS := deployment("web", appTemplate(nil, map[string]string{inject.AnnotationInject: "true", inject.AnnotationClientCA: "configmap:scrapers-ca"}))
	webhooks := injectorConfig("", true)
	svc, chart := injectorService(), injectorDeployment(injectorNS, injectorName, "--proxy-image="+d.Image)
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testNS}}, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: injectorNS}},
		dcgm, dcgmRS, podOf(t, d, dcgm, dcgmRS, "a", true, ""), web, webRS, podOf(t, d, web, webRS, "a", true, ""),
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "scrapers-ca"}, Data: map[string][]byte{"ca.crt": []byte("CA")}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "scrapers-ca"}, Data: map[string]string{"ca.crt": "CA"}},
		&monitoringv1.ServiceMonitor{ObjectMeta: metav1.ObjectMeta{Namespace: "monitoring", Name: "dcgm"}},
		&monitoringv1.PodMonitor{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "dcgm"}},
		&webhooks, &svc, &chart,
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).WithInterceptorFuncs(interceptor.Funcs{
		List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			if err := authorize("list", list); err != nil {
				return err
			}
			return c.List(ctx, list, opts...)
		},
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if err := authorize("get", obj); err != nil {
				return err
			}
			return c.Get(ctx, key, obj, opts...)
		},
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if err := authorize("create", obj); err != nil {
				return err
			}
			if sar, ok := obj.(*authorizationv1.SubjectAccessReview); ok {
				sar.Status.Allowed = true
				return nil
			}
			return c.Create(ctx, obj, opts...)
		},
	}).Build()

	in, err := ReadInjector(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	if dep, reason := ChooseInjector(in); dep == nil || dep.Name != injectorName {
		t.Errorf("with Rules(), the injector's Deployment is not found: %s", reason)
	}
	snap, err := Gather(t.Context(), c, d, Scope{AllNamespaces: true})
	if err != nil {
		t.Fatal(err)
	}
	scraper, _ := ParseScraper("system:serviceaccount:monitoring:prometheus")
	r := (&Checker{Defaults: d, Scrapers: []Scraper{scraper}, Reviews: c}).Check(t.Context(), snap)
	if len(snap.Denied) > 0 || len(r.Unchecked) > 0 {
		t.Errorf("with Rules(): denied %+v, unchecked %+v", snap.Denied, r.Unchecked)
	}
	if len(snap.ClientCAs) != 2 || len(snap.ServiceMonitors) != 1 || len(snap.PodMonitors) != 1 {
		t.Errorf("read %d client CAs, %d ServiceMonitors, %d PodMonitors; want 2, 1, 1", len(snap.ClientCAs), len(snap.ServiceMonitors), len(snap.PodMonitors))
	}
	for _, rule := range Rules() {
		for _, res := range rule.Resources {
			if !asked[rule.APIGroups[0]+"/"+res] {
				t.Errorf("Rules() grants %q %s, which check never asked for", rule.APIGroups[0], res)
			}
		}
	}
}
