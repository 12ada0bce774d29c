package main

import (
	"bytes"
	"context"
	"errors"
	"io"
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
		{"bad default", deployment, []string{"inject", "-f", "-", "--sidecar-mode", "sideways"}, 2, `sidecarMode: Unsupported value: "sideways"`},
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

// annotated is the deployment in namespace gpu with the given Pod template annotations (name,
// value pairs).
func annotated(annotations ...string) string {
	var b strings.Builder
	b.WriteString("      annotations:\n")
	for i := 0; i+1 < len(annotations); i += 2 {
		b.WriteString("        " + annotations[i] + ": \"" + annotations[i+1] + "\"\n")
	}
	d := strings.Replace(deployment, "  name: web\n", "  name: web\n  namespace: gpu\n", 1)
	return strings.Replace(d, "      labels: {app: web}\n    spec:", "      labels: {app: web}\n"+b.String()+"    spec:", 1)
}

// TestAllowedIssuersAndSuffixes: what the operator allows is what a Pod may name, and nothing
// else, whether it comes from a flag or the config file.
func TestAllowedIssuersAndSuffixes(t *testing.T) {
	pod := annotated("rbac-proxy.io/issuer", "Issuer/team-ca", "rbac-proxy.io/dns-names", "web.gpu.corp.example")
	code, out, errOut := runCmd(t, pod, "inject", "-f", "-", "--default-issuer", "ClusterIssuer/ca",
		"--allowed-issuers", "Issuer/*", "--allowed-dns-suffixes", "gpu.corp.example")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	// inject -f prints the workload only (the Certificate is the cluster's business): that it is
	// injected says the policy accepted both.
	if !strings.Contains(out, "rbac-proxy.io/status: injected") {
		t.Errorf("the allowed issuer and DNS name were not injected:\n%s", out)
	}

	code, _, errOut = runCmd(t, pod, "inject", "-f", "-", "--default-issuer", "ClusterIssuer/ca")
	if code != 1 || !strings.Contains(errOut, "rbac-proxy.io/issuer") || !strings.Contains(errOut, "Issuer/team-ca") ||
		!strings.Contains(errOut, "rbac-proxy.io/dns-names") || !strings.Contains(errOut, "web.gpu.corp.example") {
		t.Errorf("nothing allowed: exit %d, %q; want the issuer and the DNS name refused", code, errOut)
	}
}

func TestSecurityFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"issuer syntax", []string{"--allowed-issuers", "ClusterIssuer/ok,nonsense"}, []string{`allowedIssuers[1]: Invalid value: "nonsense"`, "Issuer/*"}},
		{"top-level domain", []string{"--allowed-dns-suffixes", "com"}, []string{`allowedDNSSuffixes[0]: Invalid value: "com"`, "outside the cluster"}},
		{"cluster suffix", []string{"--allowed-dns-suffixes", "svc.cluster.local"}, []string{`allowedDNSSuffixes[0]: Invalid value: "svc.cluster.local"`}},
		{"scrapers secret", []string{"--scrapers-ca-secret", "just-a-name"}, []string{`scrapersCASecret: Invalid value: "just-a-name"`, "NAMESPACE/NAME"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"inject", "-f", "-", "--default-issuer", "ClusterIssuer/ca"}, tc.args...)
			code, out, errOut := runCmd(t, deployment, args...)
			if code != 2 || out != "" {
				t.Errorf("exit %d, stdout %q; want exit 2 and no output", code, out)
			}
			for _, want := range tc.want {
				if !strings.Contains(errOut, want) {
					t.Errorf("stderr %q lacks %q", errOut, want)
				}
			}
		})
	}
}

// The webhook's client-certificate flags are checked with the defaults, before any connection to
// the API server, and every problem is reported at once.
func TestServeClientAuthFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"names without CA", []string{"--webhook-client-names", "kube-apiserver"}, []string{`--webhook-client-names: Invalid value: \"kube-apiserver\"`, "only with --webhook-client-ca-name"}},
		{"CA as a path", []string{"--webhook-client-ca-name", "/etc/ca.crt"}, []string{`--webhook-client-ca-name: Invalid value: \"/etc/ca.crt\"`, "a file name in --cert-dir"}},
		{"empty name", []string{"--webhook-client-ca-name", "ca.crt", "--webhook-client-names", "a,,b"}, []string{`--webhook-client-names[1]: Invalid value: \"\"`, "not empty"}},
		{"with a bad default", []string{"--webhook-client-names", "x", "--scrapers-ca-secret", "x"}, []string{"only with --webhook-client-ca-name", `scrapersCASecret: Invalid value: \"x\"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runCmd(t, "", append([]string{"serve", "--kubeconfig", "/nonexistent"}, tc.args...)...)
			if code != 2 {
				t.Errorf("exit %d, want 2: %s", code, errOut)
			}
			for _, want := range tc.want {
				if !strings.Contains(errOut, want) {
					t.Errorf("stderr %q lacks %q", errOut, want)
				}
			}
		})
	}
}

func TestServeClientAuthOptions(t *testing.T) {
	o := &serveOptions{}
	fs := newServeFlags(o)
	if err := fs.Parse([]string{"--webhook-client-ca-name=ca.crt", "--webhook-client-names=kube-apiserver", "--webhook-client-names=kube-apiserver-2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := o.defaults.load(fs); err != nil {
		t.Fatal(err)
	}
	so := o.serverOptions()
	if so.ClientCAName != "ca.crt" || strings.Join(so.ClientNames, ",") != "kube-apiserver,kube-apiserver-2" || so.CertDir != "/etc/rbac-proxy-injector/tls" {
		t.Errorf("server options: CA %q, names %q, cert dir %q", so.ClientCAName, so.ClientNames, so.CertDir)
	}
	if so := (&serveOptions{}).serverOptions(); so.ClientCAName != "" || so.ClientNames != nil {
		t.Errorf("no client CA by default: %+v", so)
	}
}

// TestConfigFileLists: a list from the config file stands unless the list's flag is given, which
// then replaces it as a whole; repeated flags add up.
func TestConfigFileLists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	cfg := "defaultIssuer: ClusterIssuer/ca\nallowedIssuers: [ClusterIssuer/a, ClusterIssuer/b]\nallowedDNSSuffixes: [file.example]\nscrapersCASecret: monitoring/from-file\n"
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name                        string
		args                        []string
		issuers, suffixes, scrapers string
	}{
		{"file only", nil, "ClusterIssuer/a,ClusterIssuer/b", "file.example", "monitoring/from-file"},
		{"flag replaces", []string{"--allowed-issuers=ClusterIssuer/c"}, "ClusterIssuer/c", "file.example", "monitoring/from-file"},
		{"repeated flags", []string{"--allowed-issuers=ClusterIssuer/c", "--allowed-issuers=Issuer/*,ClusterIssuer/d", "--allowed-dns-suffixes=flag.example"}, "Issuer/*,ClusterIssuer/c,ClusterIssuer/d", "flag.example", "monitoring/from-file"},
		{"empty flag clears", []string{"--allowed-issuers=", "--scrapers-ca-secret=ops/scrapers"}, "", "file.example", "ops/scrapers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := &injectOptions{}
			fs := newInjectFlags(o)
			if err := fs.Parse(append([]string{"--config", path}, tc.args...)); err != nil {
				t.Fatal(err)
			}
			d, err := o.defaults.load(fs)
			if err != nil {
				t.Fatal(err)
			}
			var issuers []string
			if d.AllowedIssuers.Namespaced {
				issuers = append(issuers, "Issuer/*")
			}
			for _, n := range d.AllowedIssuers.Named {
				issuers = append(issuers, n.String())
			}
			scrapers := ""
			if d.ScrapersCA != nil {
				scrapers = d.ScrapersCA.String()
			}
			if got := strings.Join(issuers, ","); got != tc.issuers {
				t.Errorf("allowed issuers %q, want %q", got, tc.issuers)
			}
			if got := strings.Join(d.DNSSuffixes, ","); got != tc.suffixes {
				t.Errorf("DNS suffixes %q, want %q", got, tc.suffixes)
			}
			if scrapers != tc.scrapers {
				t.Errorf("scrapers' CA %q, want %q", scrapers, tc.scrapers)
			}
		})
	}
}

func TestLogger(t *testing.T) {
	for _, tc := range []struct {
		level, format string
		want, not     []string
	}{
		{"info", "json", []string{`"level":"info"`, `"msg":"shown"`, `"k":"v"`}, []string{"hidden", "stacktrace"}},
		{"debug", "json", []string{`"level":"debug"`, `"msg":"hidden"`}, nil},
		{"error", "console", []string{"ERROR\tfailed"}, []string{"shown", "hidden"}},
	} {
		t.Run(tc.level+"/"+tc.format, func(t *testing.T) {
			var out bytes.Buffer
			log, err := newLogger(&out, tc.level, tc.format)
			if err != nil {
				t.Fatal(err)
			}
			log.V(1).Info("hidden")
			log.Info("shown", "k", "v")
			log.Error(errors.New("boom"), "failed")
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("log lacks %q:\n%s", w, out.String())
				}
			}
			for _, n := range tc.not {
				if strings.Contains(out.String(), n) {
					t.Errorf("log has %q:\n%s", n, out.String())
				}
			}
		})
	}
	if _, err := newLogger(io.Discard, "info", "xml"); err == nil || !strings.Contains(err.Error(), `--log-format="xml"`) {
		t.Errorf("--log-format=xml: %v", err)
	}
}
