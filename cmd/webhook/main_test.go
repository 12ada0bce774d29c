package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: app
        image: example/web:1
        ports: [{name: metrics, containerPort: 9090}]
`

func runCmd(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestInjectFromStdin(t *testing.T) {
	code, out, errOut := runCmd(t, deployment, "inject", "-f", "-", "--default-issuer", "ClusterIssuer/ca", "--proxy-image", "example.org/rbac-proxy:v9")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"image: example.org/rbac-proxy:v9", "--upstream=http://127.0.0.1:9090/", "secretName: rbac-proxy-deployment-web", "rbac-proxy.io/status: injected"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestInjectFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.yaml")
	if err := os.WriteFile(path, []byte(deployment), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCmd(t, "", "inject", "--filename", path, "--default-issuer", "Issuer/x", "--sidecar-mode", "container")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Contains(out, "initContainers") || !strings.Contains(out, "name: rbac-proxy") {
		t.Errorf("--sidecar-mode=container not honoured:\n%s", out)
	}
}

func TestInjectErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"no file", "", []string{"inject"}, 2, "-f FILE or -f - is required"},
		{"missing file", "", []string{"inject", "-f", "/nonexistent/x.yaml"}, 1, "no such file"},
		{"bad default", deployment, []string{"inject", "-f", "-", "--sidecar-mode", "sideways"}, 2, `sidecarMode="sideways"`},
		{"no issuer", deployment, []string{"inject", "-f", "-"}, 1, "document 1 (Deployment web): rbac-proxy: rbac-proxy.io/issuer (not set)"},
		{"unknown flag", "", []string{"inject", "--nope"}, 2, "unknown flag: --nope"},
		{"extra args", "", []string{"inject", "-f", "-", "x"}, 2, "unexpected arguments"},
		{"unknown command", "", []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"bad serve flag", "", []string{"serve", "--log-level", "loud"}, 2, `--log-level="loud"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, tc.stdin, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, errOut, tc.code, tc.want)
			}
			if out != "" {
				t.Errorf("stdout not empty on error: %q", out)
			}
		})
	}
}

// TestConfigFile checks that a config file replaces the built-in defaults and that flags given on
// the command line win over it.
func TestConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	cfg := "proxyImage: from-file:1\ndefaultIssuer: ClusterIssuer/file\nproxyPort: 9443\nresources:\n  memoryLimit: \"\"\n"
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCmd(t, deployment, "inject", "-f", "-", "--config", path, "--proxy-port", "7443")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"image: from-file:1", "--secure-listen-address=0.0.0.0:7443", "cpu: 10m"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "limits") {
		t.Errorf("the file's empty memoryLimit was not applied:\n%s", out)
	}

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("proxyImag: typo\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCmd(t, deployment, "inject", "-f", "-", "--config", bad)
	if code != 2 || !strings.Contains(errOut, "proxyImag") {
		t.Errorf("unknown config key: exit %d, %q", code, errOut)
	}
}

func TestHelpAndVersion(t *testing.T) {
	code, out, _ := runCmd(t, "", "serve", "--help")
	if code != 0 || !strings.Contains(out, "--default-issuer") || !strings.Contains(out, "--webhook-port") {
		t.Errorf("serve --help: exit %d\n%s", code, out)
	}
	code, out, _ = runCmd(t, "", "version")
	if code != 0 || !strings.HasPrefix(out, "rbac-proxy-injector ") {
		t.Errorf("version: exit %d %q", code, out)
	}
	if defaultProxyImage() != "rbac-proxy:dev" {
		t.Errorf("default image %q: want rbac-proxy:<version> without a registry", defaultProxyImage())
	}
}
