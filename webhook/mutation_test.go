package webhook

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/rbac-proxy/rbac-proxy/internal/golden"
	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// mutationCase is one testdata/mutation/NAME.yaml: a Pod and the world it is admitted in.
type mutationCase struct {
	Description string `json:"description"`
	// NamespaceLabels default to rbac-proxy.io/inject=enabled; {} for an unlabelled namespace.
	NamespaceLabels *map[string]string    `json:"namespaceLabels"`
	Operation       admissionv1.Operation `json:"operation"`
	DryRun          bool                  `json:"dryRun"`
	// Config overrides fields of testConfig().
	Config json.RawMessage `json:"config"`
	// Objects are in the informer cache: ReplicaSets, Jobs.
	Objects               []json.RawMessage `json:"objects"`
	DeniedServiceAccounts []string          `json:"deniedServiceAccounts"`
	Pod                   corev1.Pod        `json:"pod"`
}

// mutationResult is the golden NAME.golden.yaml: the answer and the Pod after its patch.
type mutationResult struct {
	Outcome  Outcome  `json:"outcome"`
	Allowed  bool     `json:"allowed"`
	Code     int32    `json:"code,omitempty"`
	Message  string   `json:"message,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
	// Pod is the request's Pod with the response's patch applied; absent when there is no patch.
	Pod any `json:"pod,omitempty"`
}

func loadCase(t testing.TB, path string) mutationCase {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c mutationCase
	if err := yaml.UnmarshalStrict(raw, &c); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}

func (c mutationCase) envOptions(t *testing.T) envOptions {
	cfg := testConfig()
	if len(c.Config) > 0 {
		if err := json.Unmarshal(c.Config, &cfg); err != nil {
			t.Fatal(err)
		}
	}
	labels := map[string]string{inject.LabelInject: inject.NamespaceInjectEnabled}
	if c.NamespaceLabels != nil {
		labels = *c.NamespaceLabels
	}
	return envOptions{
		config:                cfg,
		namespaceLabels:       labels,
		objects:               decodeObjects(t, c.Objects),
		deniedServiceAccounts: c.DeniedServiceAccounts,
	}
}

// TestMutation admits every testdata/mutation/*.yaml Pod and compares the answer with its golden
// file. It also checks, for every injected Pod, that the patch applied to the request's Pod gives
// exactly Render's output, and that the result keeps the invariants the API server validates.
func TestMutation(t *testing.T) {
	files, err := filepath.Glob("testdata/mutation/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cases []string
	for _, f := range files {
		if !strings.HasSuffix(f, ".golden.yaml") {
			cases = append(cases, f)
		}
	}
	if len(cases) < 40 {
		t.Fatalf("found %d cases in testdata/mutation, want at least 40", len(cases))
	}
	for _, path := range cases {
		name := strings.TrimSuffix(filepath.Base(path), ".yaml")
		t.Run(name, func(t *testing.T) {
			c := loadCase(t, path)
			e := newEnv(t, c.envOptions(t))
			op := c.Operation
			if op == "" {
				op = admissionv1.Create
			}
			req := request(t, &c.Pod, op, c.DryRun)
			ctx := context.Background()
			resp, outcome := e.handler.admit(ctx, req)

			res := mutationResult{Outcome: outcome, Allowed: resp.Allowed, Warnings: resp.Warnings}
			if resp.Result != nil {
				res.Code, res.Message = resp.Result.Code, resp.Result.Message
			}
			patched := applyPatch(t, req, resp)
			if len(resp.Patches) > 0 {
				if err := json.Unmarshal(patched, &res.Pod); err != nil {
					t.Fatal(err)
				}
			}

			switch outcome {
			case OutcomeInjected:
				checkPatchIsRender(t, e, &c.Pod, patched)
			default:
				if len(resp.Patches) > 0 {
					t.Errorf("outcome %s with a patch", outcome)
				}
			}
			if !resp.Allowed && outcome != OutcomeDenied && outcome != OutcomeError {
				t.Errorf("not allowed with outcome %s", outcome)
			}
			// No side effects: a forged or dry-run review must change nothing outside its response.
			for _, w := range e.writes {
				t.Errorf("admission wrote: %s %T %s", w.Action, w.Object, w.Object.GetName())
			}
			golden.Check(t, strings.TrimSuffix(path, ".yaml")+".golden.yaml", toYAML(t, res))
		})
	}
}

// checkPatchIsRender recomputes the policy and render directly and compares with the patched Pod.
func checkPatchIsRender(t *testing.T, e *env, pod *corev1.Pod, patched []byte) {
	t.Helper()
	w, err := e.handler.Owners.Resolve(context.Background(), pod, testNamespace)
	if err != nil {
		t.Fatal(err)
	}
	p, err := inject.NewPolicy(pod, inject.PolicyInput{Defaults: e.handler.Defaults, Namespace: testNamespace, Workload: w})
	if err != nil {
		t.Fatal(err)
	}
	rendered := pod.DeepCopy()
	inject.Render(rendered, p)
	want, err := json.Marshal(rendered)
	if err != nil {
		t.Fatal(err)
	}
	if !jsonEqual(t, want, patched) {
		t.Errorf("the patched Pod is not Render's output\n--- render\n%s\n--- patched\n%s", want, patched)
	}
	var out corev1.Pod
	if err := json.Unmarshal(patched, &out); err != nil {
		t.Fatal(err)
	}
	if problems := podProblems(pod, &out); len(problems) > 0 {
		t.Errorf("injected Pod is invalid: %s", strings.Join(problems, "; "))
	}
	if !inject.IsInjected(&out) {
		t.Error("injected Pod is not recognized as injected")
	}
}
