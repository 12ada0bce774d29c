package chart

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/rbac-proxy/rbac-proxy/webhook/check"
)

// TestTemplateCheckerRole: the ClusterRole <release>-checker, rendered whatever the values, is
// the rights check needs to check everything (check.Rules()), nothing more.
func TestTemplateCheckerRole(t *testing.T) {
	for _, sets := range [][]string{nil, {"metrics.secure=false", "scrapersCA.enabled=false"}} {
		role := convert[rbacv1.ClusterRole](t, render(t, sets...)["ClusterRole/"+fullname+"-checker"])
		if diff := cmp.Diff(check.Rules(), role.Rules); diff != "" {
			t.Errorf("with %q, the ClusterRole %s-checker's rules differ from check.Rules() (-want +got):\n%s", sets, fullname, diff)
		}
	}
}
