package chart

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	rbacv1 "k8s.io/api/rbac/v1"
)

// TestTemplateMetrics: by default the webhook serves /metrics over HTTPS to callers allowed get
// on /metrics (a ClusterRole to bind them to; TokenReviews for the webhook), and the
// ServiceMonitor scrapes it with https, the serving Secret's CA and the Service's name;
// metrics.secure=false renders plain HTTP and none of that.
func TestTemplateMetrics(t *testing.T) {
	for _, tc := range []struct {
		name   string
		secure bool
		sets   []string
	}{
		{"secure (default)", true, []string{"metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.scrapeClass=token"}},
		{"plain", false, []string{"metrics.serviceMonitor.enabled=true", "metrics.secure=false"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := render(t, tc.sets...)
			if args := serveArgs(t, objs); !slices.Contains(args, "--metrics-secure="+strconv.FormatBool(tc.secure)) {
				t.Errorf("webhook args %q", args)
			}
			reader := objs["ClusterRole/"+fullname+"-metrics-reader"]
			if (reader != nil) != tc.secure {
				t.Fatalf("metrics-reader ClusterRole rendered: %v, want %v", reader != nil, tc.secure)
			}
			if tc.secure {
				r := convert[rbacv1.ClusterRole](t, reader)
				if len(r.Rules) != 1 || !slices.Equal(r.Rules[0].NonResourceURLs, []string{"/metrics"}) || !slices.Equal(r.Rules[0].Verbs, []string{"get"}) {
					t.Errorf("metrics-reader rules %+v, want get on /metrics only", r.Rules)
				}
			}
			role := convert[rbacv1.ClusterRole](t, objs["ClusterRole/"+fullname])
			reviews := false
			for _, r := range role.Rules {
				reviews = reviews || slices.Contains(r.Resources, "tokenreviews") && slices.Contains(r.Verbs, "create")
			}
			if reviews != tc.secure {
				t.Errorf("the webhook may create TokenReviews: %v, want %v", reviews, tc.secure)
			}
			sm := convert[monitoringv1.ServiceMonitor](t, objs["ServiceMonitor/"+fullname])
			ep := sm.Spec.Endpoints[0]
			if !tc.secure {
				if ep.Scheme != nil || ep.TLSConfig != nil {
					t.Errorf("plain metrics scraped with %v %+v", ep.Scheme, ep.TLSConfig)
				}
				return
			}
			if ep.Scheme == nil || strings.ToLower(string(*ep.Scheme)) != "https" || ep.TLSConfig == nil ||
				ep.TLSConfig.CA.Secret == nil || ep.TLSConfig.CA.Secret.Name != fullname+"-serving-cert" || ep.TLSConfig.CA.Secret.Key != "ca.crt" ||
				ep.TLSConfig.ServerName == nil || *ep.TLSConfig.ServerName != fullname+".rbac-proxy.svc" {
				t.Errorf("secure metrics endpoint %+v", ep)
			}
			if sm.Spec.ScrapeClassName == nil || *sm.Spec.ScrapeClassName != "token" {
				t.Errorf("scrapeClass %v, want token", sm.Spec.ScrapeClassName)
			}
		})
	}
}
