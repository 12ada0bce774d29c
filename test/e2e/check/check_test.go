package check

import (
	"bytes"
	"fmt"
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
		if f.Workload == deploymentRef(c.gpu, healthy) {
			t.Errorf("a finding on the healthy workload: %s", f)
		}
	}
	assertWorkloads(t, rep, map[webhookcheck.ObjectRef]webhookcheck.InjectionState{
		deploymentRef(c.gpu, healthy): webhookcheck.StateInjected,
		deploymentRef(c.gpu, stale):   webhookcheck.StateInjected,
		deploymentRef(c.gpu, invalid): webhookcheck.StateInvalid,
		deploymentRef(c.late, late):   webhookcheck.StateNotInjected,
		deploymentRef(c.plain, dcgm):  webhookcheck.StateSkipped,
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
	summary := fmt.Sprintf("%d errors, %d warnings, %d not checked", rep.Summary.Errors, rep.Summary.Warnings, rep.Summary.Unchecked)
	if last := lines[len(lines)-1]; strings.TrimSpace(last) != summary {
		t.Errorf("the table's last line is %q, want %q", last, summary)
	}
}

// One healthy workload, by KIND/NAME: nothing found, exit status 0.
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
	if len(rep.Workloads) != 1 || rep.Workloads[0].ObjectRef != deploymentRef(c.gpu, healthy) {
		t.Fatalf("check %q reported workloads %+v, want deployment %s/%s alone", args, rep.Workloads, c.gpu, healthy)
	}
	w := rep.Workloads[0]
	if w.Injection.State != webhookcheck.StateInjected || w.Pods != 1 || w.Injected != 1 || w.Policy == nil {
		t.Fatalf("healthy: %+v", w)
	}
	if w.Policy.Mode != "rename" || w.Policy.Image != c.proxyImage || w.Policy.Certificate == "" {
		t.Errorf("healthy's policy: %+v", *w.Policy)
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
// Findings of pending codes are not compared.
func assertFindings(t *testing.T, got, want []finding) bool {
	t.Helper()
	isPending := func(f finding) bool { return pending[f.Code] }
	got = slices.DeleteFunc(slices.Clone(got), isPending)
	want = slices.DeleteFunc(slices.Clone(want), isPending)
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
