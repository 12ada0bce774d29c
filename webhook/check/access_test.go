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
