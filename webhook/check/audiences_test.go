package check

import (
	"slices"
	"strings"
	"testing"

	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"

	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// TestTokenAudiences: a proxy that takes tokens of another namespace's audience, or of a URL's
// (the API server's), is a finding on the workload; its own namespace's or another plain name
// is not.
func TestTokenAudiences(t *testing.T) {
	d := testDefaults(t)
	local := map[string]string{inject.AnnotationTokenVerification: "local"}
	with := func(base map[string]string, audiences string) map[string]string {
		m := map[string]string{inject.AnnotationTokenAudiences: audiences}
		for k, v := range base {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		name        string
		annotations map[string]string
		findings    []string
		message     string
	}{
		{name: "review mode, the API server's default audience", findings: []string{}},
		{name: "local mode, its namespace's audience", annotations: local, findings: []string{}},
		{name: "local mode, its namespace's audience named", annotations: with(local, "rbac-proxy:gpu"), findings: []string{}},
		{name: "local mode, a plain name", annotations: with(local, "gpu-metrics"), findings: []string{}},
		{name: "local mode, another namespace's audience", annotations: with(local, "rbac-proxy:kube-system"),
			findings: []string{"ForeignTokenAudience Deployment/dcgm"}, message: `takes tokens of audience "rbac-proxy:kube-system" (the proxies' of namespace kube-system)`},
		{name: "review mode, the API server's issuer", annotations: with(nil, "https://kubernetes.default.svc.cluster.local"),
			findings: []string{"ForeignTokenAudience Deployment/dcgm"}, message: "a URL, as the API server's and other issuers' audiences are"},
		{name: "review mode, its own and another namespace's", annotations: with(nil, "rbac-proxy:gpu,rbac-proxy:monitoring"),
			findings: []string{"ForeignTokenAudience Deployment/dcgm"}, message: `"rbac-proxy:monitoring"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ann := map[string]string{inject.AnnotationInject: "true"}
			for k, v := range tc.annotations {
				ann[k] = v
			}
			dep, rs := deployment("dcgm", appTemplate(nil, ann))
			r := run(t, d, snapshotOf(namespace(nil), dep, rs, podOf(t, d, dep, rs, "a", true, ""), certificate("dcgm", cmmeta.ConditionTrue, "Ready")))
			if got := findingKeys(r); !slices.Equal(got, tc.findings) {
				t.Fatalf("findings %v, want %v: %+v", got, tc.findings, r.Findings)
			}
			if len(r.Findings) == 0 {
				return
			}
			f := r.Findings[0]
			if !strings.Contains(f.Message, tc.message) || f.Severity != SeverityError ||
				f.Fix != `set rbac-proxy.io/token-audiences: rbac-proxy:gpu in spec.template.metadata.annotations (or an audience no other service takes)` {
				t.Errorf("finding %+v, want a message with %q", f, tc.message)
			}
		})
	}
}
