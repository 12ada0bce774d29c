package check

import (
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// What check must find is really there, read from the API server without check: otherwise a
// finding (or its absence) would prove nothing.
func TestFailureModesAreInPlace(t *testing.T) {
	c := setup(t)
	ctx := t.Context()
	pod := func(ns, name string) *corev1.Pod {
		t.Helper()
		pods := &corev1.PodList{}
		if err := c.client.List(ctx, pods, client.InNamespace(ns), client.MatchingLabels{"app": name}); err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) != 1 {
			t.Fatalf("%d Pods of %s/%s, want 1", len(pods.Items), ns, name)
		}
		return &pods.Items[0]
	}
	proxyImage := func(p *corev1.Pod) string {
		if c := inject.ProxyContainer(p); c != nil {
			return c.Image
		}
		return ""
	}
	for _, name := range []string{healthy, plainHTTP, podMon, byPort, noReview, forbidden, noCert, clientCA} {
		if got := proxyImage(pod(c.gpu, name)); got != c.proxyImage {
			t.Errorf("%s's Pod runs the proxy %q, want the upgraded injector's %q", name, got, c.proxyImage)
		}
	}
	if got := proxyImage(pod(c.gpu, stale)); got == "" || got == c.proxyImage {
		t.Errorf("stale's Pod runs the proxy %q, want the release before %s", got, c.proxyImage)
	}
	for _, w := range []struct{ ns, name string }{{c.late, late}, {c.plain, dcgm}, {c.plain, metrics}} {
		if p := pod(w.ns, w.name); inject.IsInjected(p) {
			t.Errorf("%s/%s's Pod carries the proxy", w.ns, w.name)
		}
	}
	ns := &corev1.Namespace{}
	if err := c.client.Get(ctx, client.ObjectKey{Name: c.late}, ns); err != nil {
		t.Fatal(err)
	}
	if ns.Labels[inject.LabelInject] != inject.NamespaceInjectEnabled {
		t.Errorf("namespace %s is not labelled: %v", c.late, ns.Labels)
	}
	pods := &corev1.PodList{}
	if err := c.client.List(ctx, pods, client.InNamespace(c.gpu), client.MatchingLabels{"app": invalid}); err != nil || len(pods.Items) != 0 {
		t.Errorf("invalid has %d Pods (%v), want none: the webhook denies them", len(pods.Items), err)
	}

	// The RBAC the findings are about, as SubjectAccessReviews see it.
	allowed := func(user string, groups []string, attrs *authorizationv1.ResourceAttributes, path string) bool {
		t.Helper()
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user, Groups: groups, ResourceAttributes: attrs,
		}}
		if path != "" {
			sar.Spec.NonResourceAttributes = &authorizationv1.NonResourceAttributes{Path: path, Verb: "get"}
		}
		got, err := cp.Clientset.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return got.Status.Allowed
	}
	saGroups := func(ns string) []string {
		return []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}
	}
	tokenReviews := &authorizationv1.ResourceAttributes{Group: "authentication.k8s.io", Resource: "tokenreviews", Verb: "create"}
	if !allowed("system:serviceaccount:"+c.gpu+":"+exporterSA, saGroups(c.gpu), tokenReviews, "") {
		t.Errorf("ServiceAccount %s may not create TokenReviews", exporterSA)
	}
	if allowed("system:serviceaccount:"+c.gpu+":"+noReview, saGroups(c.gpu), tokenReviews, "") {
		t.Errorf("ServiceAccount %s may create TokenReviews", noReview)
	}
	if !allowed(c.scraper, saGroups(c.monitoring), nil, "/metrics") {
		t.Errorf("%s may not get /metrics", c.scraper)
	}
	proxy := &authorizationv1.ResourceAttributes{Namespace: c.gpu, Resource: "services", Subresource: "proxy", Name: forbidden, Verb: "get"}
	if allowed(c.scraper, saGroups(c.monitoring), proxy, "") {
		t.Errorf("%s may get services/proxy %s", c.scraper, forbidden)
	}

	// scrape-config's ServiceMonitor selects healthy's Service on the port that leads to the proxy,
	// as plainhttp's does: check judges it, and finds it right.
	sms := &monitoringv1.ServiceMonitorList{}
	if err := c.client.List(ctx, sms, client.InNamespace(c.gpu)); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{}
	if err := c.client.Get(ctx, client.ObjectKey{Namespace: c.gpu, Name: healthy}, svc); err != nil {
		t.Fatal(err)
	}
	judged := false
	for _, sm := range sms.Items {
		sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(svc.Labels)) {
			continue
		}
		for _, ep := range sm.Spec.Endpoints {
			judged = judged || ep.Port == svc.Spec.Ports[0].Name && ep.Scheme.String() == "https"
		}
	}
	if !judged {
		t.Errorf("no https ServiceMonitor endpoint selects Service %s on port %s: %+v", healthy, svc.Spec.Ports[0].Name, sms.Items)
	}

	// clientca's client CA is the serving CA.
	cm := &corev1.ConfigMap{}
	if err := c.client.Get(ctx, client.ObjectKey{Namespace: c.gpu, Name: servingCAConfigMap}, cm); err != nil {
		t.Fatal(err)
	}
	secret := &corev1.Secret{}
	key := client.ObjectKey{Namespace: c.gpu, Name: certificateName(clientCA)}
	if err := c.client.Get(ctx, key, secret); err != nil {
		t.Fatal(err)
	}
	if cm.Data["ca.crt"] != string(secret.Data["ca.crt"]) {
		t.Errorf("ConfigMap %s holds another CA than clientca's own serving Secret", servingCAConfigMap)
	}
}
