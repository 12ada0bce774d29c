package check

import (
	"bytes"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"

	"github.com/rbac-proxy/rbac-proxy/internal/golden"
)

// sampleSnapshot has a workload of each state; reversed lists every list of objects backwards,
// which must change nothing in the report.
func sampleSnapshot(t *testing.T, reversed bool) *Snapshot {
	d := testDefaults(t)
	notInjected, nrs := deployment("dcgm", appTemplate(nil, nil))
	injected, irs := deployment("node-exporter", appTemplate(nil, optInAnnotation))
	skipped, srs := deployment("web", appTemplate(nil, map[string]string{"rbac-proxy.io/inject": "false"}))
	s := snapshotOf(namespace(enabledNS),
		notInjected, nrs, podOf(t, d, notInjected, nrs, "a", false, ""), podOf(t, d, notInjected, nrs, "b", false, ""),
		injected, irs, podOf(t, d, injected, irs, "a", true, ""), certificate("node-exporter", cmmeta.ConditionTrue, "Ready"),
		skipped, srs, podOf(t, d, skipped, srs, "a", false, ""))
	if reversed {
		slices.Reverse(s.Pods)
		slices.Reverse(s.Deployments)
		slices.Reverse(s.ReplicaSets)
	}
	return s
}

// TestJSON: check -o json is one Report, indented two spaces, newline-terminated, the same
// bytes whatever order the API server listed the objects in (testdata/report.json).
func TestJSON(t *testing.T) {
	d := testDefaults(t)
	var outs [2]bytes.Buffer
	for i, reversed := range []bool{false, true} {
		if err := WriteJSON(&outs[i], run(t, d, sampleSnapshot(t, reversed))); err != nil {
			t.Fatal(err)
		}
	}
	if outs[0].String() != outs[1].String() {
		t.Errorf("the report depends on the order objects were listed in:\n%s\n---\n%s", outs[0].String(), outs[1].String())
	}
	golden.Check(t, "testdata/report.json", outs[0].Bytes())
	var r Report
	if err := json.Unmarshal(outs[0].Bytes(), &r); err != nil || r.APIVersion != APIVersion || r.Kind != Kind {
		t.Errorf("not a %s %s: %v", APIVersion, Kind, err)
	}
}

// TestJSONEmptyLists: lists are [], never null, in a report with nothing in them.
func TestJSONEmptyLists(t *testing.T) {
	s := snapshotOf(namespace(nil))
	r := (&Checker{Defaults: testDefaults(t), Scrapers: []Scraper{{User: "prometheus"}}}).Check(t.Context(), s)
	var b bytes.Buffer
	if err := WriteJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"workloads": []`, `"findings": []`, `"unchecked": []`} {
		if !strings.Contains(b.String(), key) {
			t.Errorf("no %s in\n%s", key, b.String())
		}
	}
	if !strings.HasSuffix(b.String(), "}\n") || !strings.HasPrefix(b.String(), "{\n  \"apiVersion\"") {
		t.Errorf("not one object indented two spaces with a trailing newline:\n%s", b.String())
	}
}

// TestTable: check -o table's sections, each finding's fix under it, the counts last
// (testdata/report.txt).
func TestTable(t *testing.T) {
	var b bytes.Buffer
	if err := WriteTable(&b, run(t, testDefaults(t), sampleSnapshot(t, false))); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "testdata/report.txt", b.Bytes())
	out := b.String()
	for _, want := range []string{
		`(?m)^WORKLOADS\nNAMESPACE +KIND +NAME +PODS +INJECTED +STATE +MODE +DECIDED-BY\n`,
		`(?m)^FINDINGS\nSEVERITY +CODE +OBJECT +MESSAGE\nerror +NotInjected +gpu/Deployment/dcgm +2 of 2 Pods`,
		`(?m)^ {20,}fix: kubectl rollout restart deployment/dcgm -n gpu$`,
		`(?m)^NOT CHECKED\nCHECK +NAMESPACE +REASON\nScraperForbidden +- +no --scraper given`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("no %s in\n%s", want, out)
		}
	}
	if !strings.HasSuffix(out, "\n1 error, 0 warnings, 1 not checked\n") {
		t.Errorf("last line is not the counts:\n%s", out)
	}
}

// TestJSONKeepsCommands: a fix is a shell command, printed as written (no \u0026 for &).
func TestJSONKeepsCommands(t *testing.T) {
	r := &Report{Findings: []Finding{{Fix: "kubectl create role x && kubectl create rolebinding x <y>"}}}
	var b bytes.Buffer
	if err := WriteJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"fix": "kubectl create role x && kubectl create rolebinding x <y>"`) {
		t.Errorf("the command is not as written:\n%s", b.String())
	}
}
