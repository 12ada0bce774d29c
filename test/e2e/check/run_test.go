package check

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	webhookcheck "github.com/rbac-proxy/rbac-proxy/webhook/check"
)

// result is one run of check.
type result struct {
	args           []string
	stdout, stderr []byte
	code           int
}

// check runs `rbac-proxy-injector check` as an operator would: with a kubeconfig, the injector's
// settings flags and args.
func (c *cluster) check(t *testing.T, kubeconfig string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	r, err := c.command(ctx, kubeconfig, "check", args...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// checkBare runs check without the injector's settings flags: check reads them from the
// injector's Deployment.
func (c *cluster) checkBare(t *testing.T, kubeconfig string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	r, err := c.commandWith(ctx, kubeconfig, "check", nil, args...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// command runs `rbac-proxy-injector COMMAND --kubeconfig=KUBECONFIG SETTINGS... ARGS...`; a run
// that exits non-zero is a result, one that cannot start an error.
func (c *cluster) command(ctx context.Context, kubeconfig, command string, args ...string) (result, error) {
	return c.commandWith(ctx, kubeconfig, command, c.settings, args...)
}

// commandWith is command with the settings flags given.
func (c *cluster) commandWith(ctx context.Context, kubeconfig, command string, settings []string, args ...string) (result, error) {
	full := append(append([]string{command, "--kubeconfig=" + kubeconfig}, settings...), args...)
	cmd := exec.CommandContext(ctx, c.bin, full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Nothing of the user's environment: the kubeconfig is the one given.
	cmd.Env = []string{"HOME=" + cp.Dir, "PATH=/usr/bin:/bin"}
	err := cmd.Run()
	r := result{args: full, stdout: stdout.Bytes(), stderr: stderr.Bytes()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		return r, fmt.Errorf("running %s %q: %w\n%s", command, args, err, r.stderr)
	}
	return r, nil
}

// report decodes the run's JSON as the documented form, refusing any field check.Report does not
// have, and checks what the form promises: lists never null, sorted, indented by two spaces.
func (r result) report(t *testing.T) *webhookcheck.Report {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	rep := &webhookcheck.Report{}
	if err := dec.Decode(rep); err != nil {
		t.Fatalf("check %q: decoding its output as a check.Report: %v\nstdout:\n%s\nstderr:\n%s", r.args, err, r.stdout, r.stderr)
	}
	if dec.More() {
		t.Errorf("check %q printed more than one JSON document", r.args)
	}
	var lists map[string]json.RawMessage
	if err := json.Unmarshal(r.stdout, &lists); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"workloads", "findings", "unchecked"} {
		if v := strings.TrimSpace(string(lists[key])); !strings.HasPrefix(v, "[") {
			t.Errorf("check %q: %q is %s, want a list", r.args, key, v)
		}
	}
	if rep.APIVersion != webhookcheck.APIVersion || rep.Kind != webhookcheck.Kind {
		t.Errorf("check %q: apiVersion %q kind %q, want %q %q", r.args, rep.APIVersion, rep.Kind, webhookcheck.APIVersion, webhookcheck.Kind)
	}
	var indented bytes.Buffer
	if err := json.Indent(&indented, bytes.TrimSpace(r.stdout), "", "  "); err != nil {
		t.Fatal(err)
	}
	if want := append(indented.Bytes(), '\n'); !bytes.Equal(r.stdout, want) {
		t.Errorf("check %q: the output is not indented by two spaces with a trailing newline:\n%s", r.args, r.stdout)
	}
	// What was printed is the Report, nothing more or less: decoded and printed again, the same.
	again, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var printed, reprinted any
	if err := json.Unmarshal(r.stdout, &printed); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(again, &reprinted); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(printed, reprinted) {
		t.Errorf("check %q printed more or other than its check.Report:\n%s\nthe Report:\n%s", r.args, r.stdout, again)
	}
	checkSorted(t, rep)
	checkSummary(t, rep)
	return rep
}

// checkSorted: workloads by namespace, kind, name; findings by namespace, object kind, object
// name, code; unchecked by check, namespace.
func checkSorted(t *testing.T, rep *webhookcheck.Report) {
	t.Helper()
	less := func(a, b []string) bool { return strings.Join(a, "\x00") < strings.Join(b, "\x00") }
	for i := 1; i < len(rep.Workloads); i++ {
		a, b := rep.Workloads[i-1], rep.Workloads[i]
		if !less([]string{a.Namespace, a.Kind, a.Name}, []string{b.Namespace, b.Kind, b.Name}) {
			t.Errorf("workloads not sorted: %s/%s/%s before %s/%s/%s", a.Namespace, a.Kind, a.Name, b.Namespace, b.Kind, b.Name)
		}
	}
	for i := 1; i < len(rep.Findings); i++ {
		a, b := rep.Findings[i-1], rep.Findings[i]
		if less([]string{b.Object.Namespace, b.Object.Kind, b.Object.Name, string(b.Code)}, []string{a.Object.Namespace, a.Object.Kind, a.Object.Name, string(a.Code)}) {
			t.Errorf("findings not sorted: %s %s/%s before %s %s/%s", a.Code, a.Object.Namespace, a.Object.Name, b.Code, b.Object.Namespace, b.Object.Name)
		}
	}
	for i := 1; i < len(rep.Unchecked); i++ {
		a, b := rep.Unchecked[i-1], rep.Unchecked[i]
		if less([]string{string(b.Check), b.Namespace}, []string{string(a.Check), a.Namespace}) {
			t.Errorf("unchecked not sorted: %s %s before %s %s", a.Check, a.Namespace, b.Check, b.Namespace)
		}
	}
}

// checkSummary: the summary counts what the lists hold, and each code has its documented
// severity.
func checkSummary(t *testing.T, rep *webhookcheck.Report) {
	t.Helper()
	severity := map[webhookcheck.Code]webhookcheck.Severity{}
	for _, info := range webhookcheck.Codes() {
		severity[info.Code] = info.Severity
	}
	var got webhookcheck.Summary
	for _, f := range rep.Findings {
		if want := severity[f.Code]; f.Severity != want {
			t.Errorf("%s on %s/%s has severity %q, the code's is %q", f.Code, f.Object.Namespace, f.Object.Name, f.Severity, want)
		}
		switch f.Severity {
		case webhookcheck.SeverityError:
			got.Errors++
		case webhookcheck.SeverityWarning:
			got.Warnings++
		case webhookcheck.SeverityInfo:
			got.Infos++
		}
		if f.Fix == "" || f.Message == "" {
			t.Errorf("%s on %s/%s has no message or no fix: %+v", f.Code, f.Object.Namespace, f.Object.Name, f)
		}
	}
	got.Unchecked = len(rep.Unchecked)
	if got != rep.Summary {
		t.Errorf("summary %+v, the lists hold %+v", rep.Summary, got)
	}
}

// findings are the report's findings as the tests compare them.
func findings(rep *webhookcheck.Report) []finding {
	out := []finding{}
	for _, f := range rep.Findings {
		w := f.Object
		if f.Workload != nil {
			w = *f.Workload
		}
		out = append(out, finding{f.Code, f.Object, w})
	}
	return out
}
