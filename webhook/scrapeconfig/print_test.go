package scrapeconfig

import (
	"strings"
	"testing"
)

// TestWriteSaysTheRisks: the comments say what the output is safe under. A token's scrape
// class serves every monitor Prometheus selects, so its comment says who can use it and what to
// restrict; static targets are IPs, which other Pods get once freed.
func TestWriteSaysTheRisks(t *testing.T) {
	for _, tc := range []struct {
		name string
		auth Auth
		o    Options
		want []string
		// not is what the output must not say.
		not []string
	}{
		{"token ServiceMonitor", AuthToken, Options{Output: OutputServiceMonitor, PrometheusNamespace: "monitoring"},
			[]string{"Who can use this token: every ServiceMonitor, PodMonitor and ScrapeConfig that this Prometheus selects may name scrape class rbac-proxy-gpu",
				"the token (of audience rbac-proxy:gpu, which the proxy takes as Prometheus) wherever that monitor points, over plain http too",
				"serviceMonitorNamespaceSelector, podMonitorNamespaceSelector and scrapeConfigNamespaceSelector select only namespaces that tenants cannot write (this ServiceMonitor",
				"namespaceSelector.matchNames [gpu] and Secret rbac-proxy-deployment-dcgm-exporter copied there",
				"scrape with --auth cert, or with the plain scrape_config (-o prometheus)"}, nil},
		{"token PodMonitor", AuthToken, Options{Output: OutputPodMonitor, PrometheusNamespace: "monitoring"},
			[]string{"Who can use this token:", "cannot write (this PodMonitor then"}, nil},
		// A client certificate in a scrape class cannot be taken by a monitor that names it.
		{"cert ServiceMonitor", AuthCert, Options{Output: OutputServiceMonitor, PrometheusNamespace: "monitoring"}, nil, []string{"Who can use"}},
		{"static", AuthToken, Options{Output: OutputPrometheus, Targets: TargetsStatic},
			[]string{"The targets are the IPs of the Pods that run the injector's proxy now (1). Print this again whenever they change",
				"a freed Pod IP goes to another Pod, maybe another tenant's, and Prometheus would send it the credentials",
				"cert-manager's approver-policy"}, []string{"Who can use"}},
		{"kubernetes discovery", AuthToken, Options{Output: OutputPrometheus, Targets: TargetsKubernetes}, nil, []string{"Print this again", "Who can use"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := scrapeOf(t, "takeover", tc.auth)
			var b strings.Builder
			if err := s.Write(&b, tc.o); err != nil {
				t.Fatal(err)
			}
			// The comments' words, whatever their lines.
			text := strings.ReplaceAll(b.String(), "\n# ", " ")
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("lacks %q:\n%s", w, b.String())
				}
			}
			for _, n := range tc.not {
				if strings.Contains(text, n) {
					t.Errorf("says %q:\n%s", n, b.String())
				}
			}
		})
	}
}
