package main

import (
	"bytes"
	"encoding/json"
	"errors"
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

// TestLoggerVerbosity: -v N logs V(N) messages and not V(N+1), as JSON lines with an ISO 8601
// time stamp, errors without a stack trace; a -v past zap's int8 levels logs everything rather
// than wrapping round to nothing.
func TestLoggerVerbosity(t *testing.T) {
	for _, v := range []int{0, 2, 4, 10, 200} {
		var b bytes.Buffer
		log := newLogger(&b, v)
		log.V(v).Info("shown", "v", v)
		if v < 127 { // past zap's last level every V is logged
			log.V(v + 1).Info("hidden")
		}
		log.Error(errors.New("boom"), "failed")
		var lines []map[string]any
		for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("-v %d: not a JSON line: %q", v, l)
			}
			lines = append(lines, m)
		}
		if len(lines) != 2 || lines[0]["msg"] != "shown" || lines[1]["msg"] != "failed" || lines[1]["error"] != "boom" {
			t.Fatalf("-v %d: logged %q", v, b.String())
		}
		if _, ok := lines[1]["stacktrace"]; ok {
			t.Errorf("-v %d: an error carries a stack trace", v)
		}
		if ts, ok := lines[0]["ts"].(string); !ok || len(ts) < len("2006-01-02T15:04:05") || ts[10] != 'T' {
			t.Errorf("-v %d: the time stamp is not ISO 8601: %v", v, lines[0]["ts"])
		}
	}
}
