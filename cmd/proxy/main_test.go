package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRunExitCodes(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		code    int
		stdout  string
		stderr  string
		oneLine bool
	}{
		{name: "help", args: []string{"--help"}, code: 0, stdout: "--secure-listen-address string"},
		{name: "short help", args: []string{"-h"}, code: 0, stdout: "--upstream string"},
		{name: "version", args: []string{"--version"}, code: 0, stdout: "rbac-proxy "},
		{name: "unknown flag", args: []string{"--bogus"}, code: 2, stderr: "unknown flag: --bogus", oneLine: true},
		{name: "bad value type", args: []string{"--kube-api-qps=fast"}, code: 2, stderr: "--kube-api-qps", oneLine: true},
		{name: "invalid config", args: []string{"--secure-listen-address=127.0.0.1:0", "--upstream=http://127.0.0.1:1", "--authz=opa"}, code: 1,
			stderr: `--authz: Unsupported value: "opa": supported values: "sar", "static"`, oneLine: true},
		{name: "missing upstream", args: []string{"--secure-listen-address=127.0.0.1:0"}, code: 1, stderr: "--upstream", oneLine: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(tc.args, &out, &errOut)
			if code != tc.code {
				t.Fatalf("exit %d, want %d (stderr %q)", code, tc.code, errOut.String())
			}
			if !strings.Contains(out.String(), tc.stdout) {
				t.Errorf("stdout %q lacks %q", out.String(), tc.stdout)
			}
			if !strings.Contains(errOut.String(), tc.stderr) {
				t.Errorf("stderr %q lacks %q", errOut.String(), tc.stderr)
			}
			if tc.oneLine && strings.Count(strings.TrimSpace(errOut.String()), "\n") != 0 {
				t.Errorf("stderr is not one line: %q", errOut.String())
			}
		})
	}
}
