package check

import (
	"slices"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/rbac-proxy/rbac-proxy/webhook"
	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// barePod is a Pod without a controller, injected by the webhook's own policy and render.
func barePod(t *testing.T, d *inject.Defaults, tmpl corev1.PodTemplateSpec) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{ObjectMeta: *tmpl.ObjectMeta.DeepCopy(), Spec: *tmpl.Spec.DeepCopy()}
	pod.Namespace, pod.Name = testNS, "solo"
	p, err := webhook.PolicyFor(pod, inject.PolicyInput{Defaults: d, Namespace: testNS, Workload: inject.PodWorkload(pod)})
	if err != nil {
		t.Fatal(err)
	}
	inject.Render(pod, p)
	return pod
}

// TestRunningPolicy: an injected bare Pod's policy, which cannot be computed again from the Pod
// the render changed, is read back from its proxy and annotations, and the running proxy's
// rules apply to it.
func TestRunningPolicy(t *testing.T) {
	d := testDefaults(t)
	dcgm := appTemplate(map[string]string{"app": "solo"}, map[string]string{inject.AnnotationInject: "true", inject.AnnotationResourceAttributes: "namespace=gpu,resource=services,name=solo"})
	dcgm.Spec.Containers[0].Image = "nvcr.io/nvidia/k8s/dcgm-exporter:3.3.5"
	for _, tc := range []struct {
		name     string
		tmpl     corev1.PodTemplateSpec
		want     Policy
		findings []string
	}{{
		name: "rename",
		tmpl: appTemplate(map[string]string{"app": "solo"}, optInAnnotation),
		want: Policy{Mode: "rename", Port: "metrics", ProxyPort: 8443, Authz: "sar", TokenVerification: "review",
			Certificate: "rbac-proxy-pod-solo", Issuer: "ClusterIssuer/serving", TLSSecret: "rbac-proxy-pod-solo", Image: testImage},
		findings: []string{"CertificateNotReady Certificate/rbac-proxy-pod-solo", "ServiceTargetsAppPort Service/solo"},
	}, {
		name: "takeover of a preset's exporter",
		tmpl: dcgm,
		want: Policy{Mode: "takeover", Port: "metrics", ProxyPort: 9400, Authz: "sar", TokenVerification: "review",
			Certificate: "rbac-proxy-pod-solo", Issuer: "ClusterIssuer/serving", TLSSecret: "rbac-proxy-pod-solo", Image: testImage},
		findings: []string{"CertificateNotReady Certificate/rbac-proxy-pod-solo", "ScraperForbidden ServiceAccount/prometheus"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			pod := barePod(t, d, tc.tmpl)
			svc := service("solo", intstr.FromInt32(9400))
			svc.Spec.Selector = map[string]string{"app": "solo"}
			s := snapshotOf(namespace(nil), pod, svc)
			prometheus, _ := ParseScraper("system:serviceaccount:monitoring:prometheus")
			r := (&Checker{Defaults: d, Scrapers: []Scraper{prometheus}, Reviews: reviews(func(s authorizationv1.SubjectAccessReviewSpec) (bool, error) {
				return s.ResourceAttributes == nil || s.ResourceAttributes.Resource != "services", nil
			})}).Check(t.Context(), s)
			if len(r.Workloads) != 1 || r.Workloads[0].Policy == nil {
				t.Fatalf("workloads %+v, want solo with its policy", r.Workloads)
			}
			w := r.Workloads[0]
			got := *w.Policy
			got.DNSNames = nil
			if w.Injection.State != StateInjected || got.Mode != tc.want.Mode || got.Port != tc.want.Port || got.ProxyPort != tc.want.ProxyPort ||
				got.Authz != tc.want.Authz || got.Certificate != tc.want.Certificate || got.Image != tc.want.Image || got.TLSSecret != tc.want.TLSSecret {
				t.Errorf("%s %+v, want injected %+v", w.Injection.State, got, tc.want)
			}
			if keys := findingKeys(r); !slices.Equal(keys, tc.findings) {
				t.Errorf("findings %v, want %v", keys, tc.findings)
			}
		})
	}
}
