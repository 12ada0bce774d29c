package check

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	webhookcheck "github.com/rbac-proxy/rbac-proxy/webhook/check"
)

// Across the cluster, as its admin: exactly one finding per broken workload, none on the healthy
// one, exit status 1; the same bytes twice; every check could run.
func TestCheckFindsEachFailureMode(t *testing.T) {
	c := setup(t)
	args := []string{"-A", "-o", "json", "--scraper", c.scraper}
	first := c.check(t, cp.KubeconfigPath, args...)
	if first.code != 1 {
		t.Errorf("check %q exited %d, want 1 (error findings)\nstderr:\n%s", args, first.code, first.stderr)
	}
	rep := first.report(t)
	if !assertFindings(t, findings(rep), c.wantFindings()) {
		t.Logf("check %q:\n%s", args, first.stdout)
	}
	if len(rep.Unchecked) > 0 {
		t.Errorf("the cluster admin could not check %+v", rep.Unchecked)
	}
	for _, f := range findings(rep) {
		if f.Workload == workloadRef(c.gpu, healthy) {
			t.Errorf("a finding on the healthy workload: %s", f)
		}
	}
	assertWorkloads(t, rep, map[webhookcheck.ObjectRef]webhookcheck.InjectionState{
		workloadRef(c.gpu, healthy): webhookcheck.StateInjected,
		workloadRef(c.gpu, stale):   webhookcheck.StateInjected,
		workloadRef(c.gpu, invalid): webhookcheck.StateInvalid,
		workloadRef(c.late, late):   webhookcheck.StateNotInjected,
		workloadRef(c.plain, dcgm):  webhookcheck.StateSkipped,
		// A StatefulSet, and a Pod without a controller.
		workloadRef(c.gpu, noReview):  webhookcheck.StateInjected,
		workloadRef(c.plain, metrics): webhookcheck.StateSkipped,
	})

	if again := c.check(t, cp.KubeconfigPath, args...); !bytes.Equal(first.stdout, again.stdout) {
		t.Errorf("two runs of check %q printed different JSON:\n%s\nthen:\n%s", args, first.stdout, again.stdout)
	}

	// The table says the same, each finding with its fix.
	table := c.check(t, cp.KubeconfigPath, "-A", "--scraper", c.scraper)
	if table.code != 1 {
		t.Errorf("check -A (table) exited %d, want 1\nstderr:\n%s", table.code, table.stderr)
	}
	out := string(table.stdout)
	for _, section := range []string{"WORKLOADS", "FINDINGS"} {
		if !strings.Contains(out, section) {
			t.Errorf("the table has no %s section:\n%s", section, out)
		}
	}
	for _, f := range rep.Findings {
		if !strings.Contains(out, "fix: "+f.Fix) {
			t.Errorf("the table has no line %q for %s on %s/%s:\n%s", "fix: "+f.Fix, f.Code, f.Object.Namespace, f.Object.Name, out)
		}
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	count := func(n int, noun string) string {
		if n == 1 {
			return "1 " + noun
		}
		return fmt.Sprintf("%d %ss", n, noun)
	}
	summary := fmt.Sprintf("%s, %s, %d not checked", count(rep.Summary.Errors, "error"), count(rep.Summary.Warnings, "warning"), rep.Summary.Unchecked)
	if last := lines[len(lines)-1]; strings.TrimSpace(last) != summary {
		t.Errorf("the table's last line is %q, want %q", last, summary)
	}
}

// One healthy workload, by KIND/NAME: nothing found, exit status 0; with a scraper that may not
// scrape it, that one finding.
func TestCheckHealthyWorkload(t *testing.T) {
	c := setup(t)
	args := []string{"deployment/" + healthy, "-n", c.gpu, "-o", "json", "--scraper", c.scraper}
	r := c.check(t, cp.KubeconfigPath, args...)
	if r.code != 0 {
		t.Errorf("check %q exited %d, want 0\nstdout:\n%s\nstderr:\n%s", args, r.code, r.stdout, r.stderr)
	}
	rep := r.report(t)
	if len(rep.Findings) != 0 || len(rep.Unchecked) != 0 {
		t.Errorf("check %q found %v, could not check %+v", args, findings(rep), rep.Unchecked)
	}
	if len(rep.Workloads) != 1 || rep.Workloads[0].ObjectRef != workloadRef(c.gpu, healthy) {
		t.Fatalf("check %q reported workloads %+v, want deployment %s/%s alone", args, rep.Workloads, c.gpu, healthy)
	}
	w := rep.Workloads[0]
	if w.Injection.State != webhookcheck.StateInjected || w.Pods != 1 || w.Injected != 1 || w.Policy == nil {
		t.Fatalf("healthy: %+v", w)
	}
	if want := "Namespace " + c.gpu + " label rbac-proxy.io/inject=enabled"; w.Injection.DecidedBy != want {
		t.Errorf("healthy was decided by %q, want %q", w.Injection.DecidedBy, want)
	}
	if w.Policy.Mode != "rename" || w.Policy.Port != "metrics" || w.Policy.Image != c.proxyImage || w.Policy.Certificate != certificateName(healthy) {
		t.Errorf("healthy's policy: %+v", *w.Policy)
	}

	// The same workload, scraped by an identity with no rights at all: that is an error.
	nobody := "system:serviceaccount:" + c.monitoring + ":nobody"
	args = []string{"deployment/" + healthy, "-n", c.gpu, "-o", "json", "--scraper", nobody}
	r = c.check(t, cp.KubeconfigPath, args...)
	if r.code != 1 {
		t.Errorf("check %q exited %d, want 1\nstderr:\n%s", args, r.code, r.stderr)
	}
	assertFindings(t, findings(r.report(t)), []finding{{webhookcheck.CodeScraperForbidden,
		webhookcheck.ObjectRef{Kind: "ServiceAccount", Namespace: c.monitoring, Name: "nobody"}, workloadRef(c.gpu, healthy)}})
}

// What check cannot run is exit status 2, with the reason on stderr: a bad argument, a cluster
// that does not answer.
func TestCheckUsageAndUnreachableCluster(t *testing.T) {
	c := setup(t)
	unreachable := filepath.Join(t.TempDir(), "kubeconfig")
	err := os.WriteFile(unreachable, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, kubeconfig string
		args             []string
	}{
		{"unknown kind", cp.KubeconfigPath, []string{"replicationcontroller/x", "-n", c.gpu}},
		{"unknown output", cp.KubeconfigPath, []string{"-n", c.gpu, "-o", "yaml"}},
		{"bad setting", cp.KubeconfigPath, []string{"-n", c.gpu, "--proxy-port=0"}},
		{"unreachable cluster", unreachable, []string{"-n", c.gpu}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := c.check(t, tc.kubeconfig, tc.args...)
			if r.code != 2 || len(bytes.TrimSpace(r.stderr)) == 0 {
				t.Errorf("check %q exited %d with stderr %q, want 2 and the reason", tc.args, r.code, r.stderr)
			}
		})
	}
}

// Without --scraper, whether Prometheus may scrape is not known: said under unchecked, and
// nothing else changes.
func TestCheckWithoutScraper(t *testing.T) {
	c := setup(t)
	args := []string{"-n", c.gpu, "-o", "json"}
	r := c.check(t, cp.KubeconfigPath, args...)
	if r.code != 1 {
		t.Errorf("check %q exited %d, want 1\nstderr:\n%s", args, r.code, r.stderr)
	}
	rep := r.report(t)
	var want []finding
	for _, f := range c.wantFindings() {
		if f.Workload.Namespace == c.gpu && f.Code != webhookcheck.CodeScraperForbidden {
			want = append(want, f)
		}
	}
	assertFindings(t, findings(rep), want)
	if len(rep.Unchecked) != 1 || rep.Unchecked[0].Check != webhookcheck.CodeScraperForbidden || !strings.Contains(rep.Unchecked[0].Reason, "--scraper") {
		t.Errorf("unchecked %+v, want ScraperForbidden alone, its reason naming --scraper", rep.Unchecked)
	}
}

// assertFindings compares the findings as sets, and names what is missing and what is extra.
func assertFindings(t *testing.T, got, want []finding) bool {
	t.Helper()
	var missing, extra []string
	for _, w := range want {
		if !slices.Contains(got, w) {
			missing = append(missing, w.String())
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			extra = append(extra, g.String())
		}
	}
	if len(got) == len(want) && len(missing)+len(extra) == 0 {
		return true
	}
	lines := func(l []string) string {
		if len(l) == 0 {
			return "none"
		}
		return strings.Join(l, "\n  ")
	}
	t.Errorf("findings: %d, want %d\nmissing:\n  %s\nunexpected:\n  %s", len(got), len(want), lines(missing), lines(extra))
	return false
}

// assertWorkloads checks the injection state of the workloads named.
func assertWorkloads(t *testing.T, rep *webhookcheck.Report, want map[webhookcheck.ObjectRef]webhookcheck.InjectionState) {
	t.Helper()
	for ref, state := range want {
		i := slices.IndexFunc(rep.Workloads, func(w webhookcheck.Workload) bool { return w.ObjectRef == ref })
		if i < 0 {
			t.Errorf("no workload %s %s/%s in the report", ref.Kind, ref.Namespace, ref.Name)
			continue
		}
		if got := rep.Workloads[i].Injection; got.State != state {
			t.Errorf("workload %s/%s: injection %+v, want state %s", ref.Namespace, ref.Name, got, state)
		}
	}
}
