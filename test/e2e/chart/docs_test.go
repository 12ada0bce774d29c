package chart

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/rbac-proxy/rbac-proxy/test/framework"
)

// docs/helm.md documents every value of values.yaml and nothing else.
func TestValuesDocumented(t *testing.T) {
	root, err := framework.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(raw, &values); err != nil {
		t.Fatal(err)
	}
	paths := map[string]bool{}
	var leaves []string
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		paths[prefix] = true
		if m, ok := v.(map[string]any); ok && len(m) > 0 {
			for k, sub := range m {
				walk(prefix+"."+k, sub)
			}
			return
		}
		leaves = append(leaves, prefix)
	}
	for k, v := range values {
		walk(k, v)
	}
	sort.Strings(leaves)

	doc, err := os.ReadFile(filepath.Join(root, "docs", "helm.md"))
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-zA-Z.]+)` \\|").FindAllStringSubmatch(string(doc), -1) {
		documented[m[1]] = true
		if !paths[m[1]] {
			t.Errorf("docs/helm.md documents %q, which values.yaml does not have", m[1])
		}
	}
	for _, leaf := range leaves {
		covered := false
		for p := leaf; p != ""; p = parent(p) {
			covered = covered || documented[p]
		}
		if !covered {
			t.Errorf("value %q of values.yaml is not documented in docs/helm.md", leaf)
		}
	}
}

func parent(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '.' {
			return path[:i]
		}
	}
	return ""
}
