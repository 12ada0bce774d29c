package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// unreachableKubeconfig is a kubeconfig whose API server nothing listens on, in namespace gpu.
func unreachableKubeconfig(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	const cfg = `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:1"}
users:
- name: u
  user: {token: t}
contexts:
- name: ctx
  context: {cluster: c, user: u, namespace: gpu}
current-context: ctx
`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCheckUsageErrors: bad flags, settings and arguments exit 2 before the cluster is asked,
// and the message names the flag (or argument) and its value; an API server that cannot be
// reached exits 2 too.
func TestCheckUsageErrors(t *testing.T) {
	kc := unreachableKubeconfig(t)
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"output", []string{"-o", "yaml"}, []string{"--output", `"yaml"`, "table", "json"}},
		{"namespace and all", []string{"-n", "gpu", "-A"}, []string{"--namespace", `"gpu"`, "--all-namespaces"}},
		{"scraper", []string{"--scraper", "system:serviceaccount:monitoring"}, []string{"--scraper[0]", `"system:serviceaccount:monitoring"`, "NAMESPACE:NAME"}},
		{"setting", []string{"--proxy-port", "0"}, []string{"proxyPort", "0"}},
		{"kind", []string{"service/dcgm"}, []string{`argument "service/dcgm"`, `unknown kind "service"`, "deployment"}},
		{"two objects", []string{"a", "b"}, []string{"unexpected arguments"}},
		{"object across namespaces", []string{"-A", "deploy/dcgm"}, []string{`argument "deploy/dcgm"`, "--all-namespaces"}},
		{"unknown flag", []string{"--colour"}, []string{"--colour"}},
		{"injector", []string{"--injector", "rbac-proxy"}, []string{"--injector", `"rbac-proxy"`, "auto, none or NAMESPACE/NAME"}},
		{"unreachable", nil, []string{"https://127.0.0.1:1"}},
		{"unknown context", []string{"--context", "nope"}, []string{"nope"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, "", append([]string{"check", "--kubeconfig", kc}, tc.args...)...)
			if code != 2 || out != "" {
				t.Errorf("exit %d, stdout %q; want 2 and nothing", code, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q: %s", w, errOut)
				}
			}
		})
	}
}
