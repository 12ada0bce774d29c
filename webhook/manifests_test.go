package webhook

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/rbac-proxy/rbac-proxy/internal/golden"
	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

func testInjector(t *testing.T) *Injector {
	t.Helper()
	d, err := testConfig().Compile()
	if err != nil {
		t.Fatal(err)
	}
	return &Injector{Defaults: d}
}

// TestInject runs inject -f over every testdata/inject/*.yaml and compares the output (or the
// error) with its golden file; injecting the output again must change nothing.
func TestInject(t *testing.T) {
	files, err := filepath.Glob("testdata/inject/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, path := range files {
		if strings.HasSuffix(path, ".golden.yaml") {
			continue
		}
		n++
		name := strings.TrimSuffix(filepath.Base(path), ".yaml")
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			inj := testInjector(t)
			var out bytes.Buffer
			err = inj.Inject(bytes.NewReader(in), &out)
			goldenPath := strings.TrimSuffix(path, ".yaml") + ".golden.yaml"
			if err != nil {
				if out.Len() > 0 {
					t.Errorf("output written despite the error: %s", out.String())
				}
				golden.Check(t, goldenPath, []byte("# error\n"+err.Error()+"\n"))
				return
			}
			golden.Check(t, goldenPath, out.Bytes())

			var again bytes.Buffer
			if err := inj.Inject(bytes.NewReader(out.Bytes()), &again); err != nil {
				t.Fatalf("injecting the output again: %v", err)
			}
			if !bytes.Equal(out.Bytes(), again.Bytes()) {
				t.Errorf("injecting twice changed the output:\n%s", again.String())
			}
		})
	}
	if n < 5 {
		t.Fatalf("found %d inject cases, want at least 5", n)
	}
}

// TestInjectMatchesRender checks that inject -f gives a Deployment's template exactly what
// Render gives the same template as a Pod: the offline path writes nothing of its own.
func TestInjectMatchesRender(t *testing.T) {
	in, err := os.ReadFile("testdata/inject/workloads.yaml")
	if err != nil {
		t.Fatal(err)
	}
	inj := testInjector(t)
	var out bytes.Buffer
	if err := inj.Inject(bytes.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	var before, after *appsv1.Deployment
	for _, pair := range []struct {
		data []byte
		dst  **appsv1.Deployment
	}{{in, &before}, {out.Bytes(), &after}} {
		r := utilyaml.NewYAMLReader(bufioReader(pair.data))
		for {
			doc, err := r.Read()
			if err != nil {
				break
			}
			var d appsv1.Deployment
			if yaml.Unmarshal(doc, &d) == nil && d.Kind == "Deployment" && d.Name == "web" {
				*pair.dst = &d
			}
		}
	}
	if before == nil || after == nil {
		t.Fatal("Deployment web not found")
	}
	pod := &corev1.Pod{ObjectMeta: before.Spec.Template.ObjectMeta, Spec: before.Spec.Template.Spec}
	p, err := inject.NewPolicy(pod, inject.PolicyInput{Defaults: inj.Defaults, Namespace: "team", Workload: inject.Workload{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}})
	if err != nil {
		t.Fatal(err)
	}
	want := pod.DeepCopy()
	inject.Render(want, p)
	got := &corev1.Pod{ObjectMeta: after.Spec.Template.ObjectMeta, Spec: after.Spec.Template.Spec}
	wj, _ := json.Marshal(want)
	gj, _ := json.Marshal(got)
	if !jsonEqual(t, wj, gj) {
		t.Errorf("inject -f template differs from Render\n--- render\n%s\n--- inject\n%s", wj, gj)
	}
	if problems := podProblems(pod, got); len(problems) > 0 {
		t.Errorf("injected template is invalid: %v", problems)
	}
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }
