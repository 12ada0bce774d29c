package main

import (
	"strings"
	"testing"
)

// TestScrapeConfigUsage: every bad flag or argument is refused before the cluster is reached,
// naming the flag, the value and what is allowed.
func TestScrapeConfigUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"no workload", nil, []string{"KIND/NAME is required", "deployment, statefulset"}},
		{"two workloads", []string{"deploy/a", "deploy/b"}, []string{"unexpected arguments [deploy/a deploy/b]"}},
		{"unknown kind", []string{"replicaset/a"}, []string{`unknown kind "replicaset"; allowed: pod, deployment`}},
		{"unknown auth", []string{"deploy/a", "--auth", "basic"}, []string{`--auth: Unsupported value: "basic": supported values: "token", "cert"`}},
		{"unknown output", []string{"deploy/a", "-o", "json"}, []string{`-o: Unsupported value: "json": supported values: "servicemonitor", "podmonitor", "prometheus"`}},
		{"unknown targets", []string{"deploy/a", "-o", "prometheus", "--targets", "dns"}, []string{`--targets: Unsupported value: "dns": supported values: "kubernetes", "static"`}},
		{"targets for a monitor", []string{"deploy/a", "--targets", "static"}, []string{`--targets: Invalid value: "static": allowed: only with -o prometheus`}},
		{"cert without its Secret", []string{"deploy/a", "--auth", "cert"}, []string{"--client-cert-secret: Required value: with --auth cert"}},
		{"a Secret without cert", []string{"deploy/a", "--client-cert-secret", "tls"}, []string{`--client-cert-secret: Invalid value: "tls": allowed: only with --auth cert`}},
		{"a bad Secret name", []string{"deploy/a", "--auth", "cert", "--client-cert-secret", "No_Such"}, []string{`--client-cert-secret: Invalid value: "No_Such": allowed: a Secret name`}},
		{"a bad namespace", []string{"deploy/a", "--prometheus-namespace", "Mon"}, []string{`--prometheus-namespace: Invalid value: "Mon": allowed: a namespace name`}},
		{"a bad injector", []string{"deploy/a", "--injector", "a/b/c"}, []string{`--injector: Invalid value: "a/b/c": allowed: auto, none or NAMESPACE/NAME`}},
		// Every error at once, the settings' too.
		{"several", []string{"deploy/a", "--auth", "x", "-o", "y", "--sidecar-mode", "sideways"}, []string{"--auth: Unsupported", "-o: Unsupported", `sidecarMode: Unsupported value: "sideways"`}},
		{"no kubeconfig", []string{"deploy/a", "--kubeconfig", "/nonexistent/kubeconfig"}, []string{"kubeconfig: ", "/nonexistent/kubeconfig"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, "", append([]string{"scrape-config"}, tc.args...)...)
			if code != 2 || out != "" {
				t.Errorf("exit %d, stdout %q; want 2 and nothing", code, out)
			}
			for _, want := range tc.want {
				if !strings.Contains(errOut, want) {
					t.Errorf("stderr %q lacks %q", errOut, want)
				}
			}
		})
	}
}
