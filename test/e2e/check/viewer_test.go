package check

import (
	"maps"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	webhookcheck "github.com/rbac-proxy/rbac-proxy/webhook/check"
)

// A namespace-scoped viewer (ClusterRole view bound in gpu alone) may read the namespace itself
// (its labels), its workloads, Pods, Services and ConfigMaps, and nothing else check reads: no
// Secret, no Certificate, no ServiceMonitor or PodMonitor, no SubjectAccessReview. check says
// which checks that leaves undone instead of failing, and otherwise finds what the admin finds:
// nothing invented, nothing dropped.
func TestCheckAsNamespaceViewer(t *testing.T) {
	c := setup(t)
	ctx := t.Context()
	const viewer = "viewer"
	err := c.create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: c.gpu, Name: viewer},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: c.gpu, Name: viewer}},
	})
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := cp.ServiceAccountKubeconfig(ctx, c.gpu, viewer)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"-n", c.gpu, "-o", "json", "--scraper", c.scraper}
	r := c.check(t, kubeconfig, args...)
	if r.code != 1 {
		t.Errorf("check %q as a namespace viewer exited %d, want 1 (it ran, and found errors)\nstderr:\n%s", args, r.code, r.stderr)
	}
	rep := r.report(t)

	unchecked := map[webhookcheck.Code]bool{}
	for _, u := range rep.Unchecked {
		unchecked[u.Check] = true
		if u.Reason == "" || u.Namespace != c.gpu {
			t.Errorf("unchecked entry %+v: want a reason, and namespace %s", u, c.gpu)
		}
	}
	wantUnchecked := []webhookcheck.Code{
		webhookcheck.CodeCertificateNotReady,     // Certificates
		webhookcheck.CodeClientCATrustsServingCA, // serving Secrets
		webhookcheck.CodePlainHTTPScrape,         // ServiceMonitors and PodMonitors
		webhookcheck.CodeProxyCannotReview,       // SubjectAccessReviews
		webhookcheck.CodeScraperForbidden,        // SubjectAccessReviews
	}
	if got := slices.Sorted(maps.Keys(unchecked)); !slices.Equal(got, wantUnchecked) {
		t.Errorf("the viewer's check could not check %v, want %v; unchecked: %+v", got, wantUnchecked, rep.Unchecked)
	}

	table := c.check(t, kubeconfig, "-n", c.gpu, "--scraper", c.scraper)
	for _, u := range rep.Unchecked {
		if !strings.Contains(string(table.stdout), u.Reason) {
			t.Errorf("the table's NOT CHECKED section does not say %q:\n%s", u.Reason, table.stdout)
		}
	}

	admin := c.check(t, cp.KubeconfigPath, args...).report(t)
	var want []finding
	for _, f := range findings(admin) {
		if !unchecked[f.Code] {
			want = append(want, f)
		}
	}
	if !assertFindings(t, findings(rep), want) {
		t.Logf("check %q as the viewer:\n%s", args, r.stdout)
	}
}
