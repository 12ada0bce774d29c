package oidc_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rbac-proxy/rbac-proxy/test/framework"
)

// authnConfig is an AuthenticationConfiguration for the control plane's issuer: audiences, a
// CEL user name (the sub claim with a prefix) and groups (the namespace), a claim validation
// rule (only namespace ns) and a user validation rule.
func authnConfig(t *testing.T, ns, audiences string) string {
	t.Helper()
	ca, err := os.ReadFile(caFile())
	if err != nil {
		t.Fatal(err)
	}
	var pemLines strings.Builder
	for _, l := range strings.SplitAfter(strings.TrimSpace(string(ca)), "\n") {
		pemLines.WriteString("      " + l)
	}
	return `apiVersion: apiserver.config.k8s.io/v1
kind: AuthenticationConfiguration
jwt:
- issuer:
    url: ` + discovery(t) + `
    audiences: ` + audiences + `
    audienceMatchPolicy: MatchAny
    certificateAuthority: |
` + pemLines.String() + `
  claimMappings:
    username:
      expression: "'jwt:' + claims.sub"
    groups:
      expression: "['ns:' + claims['kubernetes.io'].namespace]"
  claimValidationRules:
  - expression: "claims['kubernetes.io'].namespace == '` + ns + `'"
    message: only ServiceAccounts of the test namespace
  userValidationRules:
  - expression: "!user.username.endsWith(':intruder')"
    message: the intruder is refused
`
}

// TestAuthenticationConfig: the same issuer through --authentication-config, with CEL claim
// mappings and validation rules; then the file changes (another audience) and is reloaded, and
// a bad new file keeps the last good one.
func TestAuthenticationConfig(t *testing.T) {
	ns, other := cp.TestNamespace(t, "oidc-e2e"), cp.TestNamespace(t, "oidc-e2e")
	file := filepath.Join(t.TempDir(), "authn.yaml")
	write := func(s string) {
		t.Helper()
		// Renamed into place, as a kubelet volume update is: never read half-written.
		tmp := file + ".tmp"
		if err := os.WriteFile(tmp, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			t.Fatal(err)
		}
	}
	write(authnConfig(t, ns, "[metrics, federate]"))
	user := "jwt:system:serviceaccount:" + ns + ":prometheus"
	p := proxy(t, "--authentication-config="+file, "--authz=static", "--allowed-groups=ns:"+ns)

	good := cp.TestToken(t, ns, "prometheus", "federate")
	if body := waitAccepted(t, p, good); body != user+"|ns:"+ns {
		t.Fatalf("upstream saw %q, want %q", body, user+"|ns:"+ns)
	}
	checkRefusals(t, p, []refusal{
		{"another audience", cp.TestToken(t, ns, "prometheus", "something-else"), http.StatusUnauthorized},
		{"the API server's audience", cp.TestToken(t, ns, "prometheus"), http.StatusUnauthorized},
		{"expired", resign(t, good, -2*time.Hour, signer), http.StatusUnauthorized},
		{"signed by another key", resign(t, good, 0, foreignKey(t)), http.StatusUnauthorized},
		{"claim validation rule", cp.TestToken(t, other, "prometheus", "metrics"), http.StatusUnauthorized},
		{"user validation rule", cp.TestToken(t, ns, "intruder", "metrics"), http.StatusUnauthorized},
	})

	// Reload: only the audience "scrape" now.
	write(authnConfig(t, ns, "[scrape]"))
	scrape := cp.TestToken(t, ns, "prometheus", "scrape")
	waitAccepted(t, p, scrape)
	if code, _ := get(t, p, good); code != http.StatusUnauthorized {
		t.Fatalf("audience federate after the reload: status %d, want 401", code)
	}

	// A bad file (CEL that does not compile) is refused; the last good one stays.
	write(strings.Replace(authnConfig(t, ns, "[metrics]"), "'jwt:' + claims.sub", "'jwt:' + ", 1))
	err := framework.Eventually(t.Context(), 30*time.Second, "the proxy to refuse the bad file", func(context.Context) (bool, error) {
		return strings.Contains(p.Log(), "keeping the last good --authentication-config"), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.Log(), "jwt[0].claimMappings.username.expression") {
		t.Errorf("the refusal does not name the field:\n%s", p.Log())
	}
	if code, body := get(t, p, scrape); code != http.StatusOK {
		t.Fatalf("after a bad file: status %d (%q), want 200 from the last good one", code, body)
	}
}

// TestAuthenticationConfigRefusedAtStart: a bad file stops the proxy at start, naming the field.
func TestAuthenticationConfigRefusedAtStart(t *testing.T) {
	ns := cp.TestNamespace(t, "oidc-e2e")
	file := filepath.Join(t.TempDir(), "authn.yaml")
	bad := strings.Replace(authnConfig(t, ns, "[metrics]"), "audienceMatchPolicy: MatchAny", "audienceMatchPolicy: MatchAll", 1)
	if err := os.WriteFile(file, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := framework.StartProxy(t.Context(), proxyBin, framework.ProxyOptions{Dir: t.TempDir(),
		Args: []string{"--authentication-config=" + file, "--authz=static", "--allowed-groups=x", "--upstream=http://127.0.0.1:1/"}})
	if err == nil || !strings.Contains(err.Error(), "jwt[0].issuer.audienceMatchPolicy") {
		t.Fatalf("start with audienceMatchPolicy MatchAll: %v, want an exit naming jwt[0].issuer.audienceMatchPolicy", err)
	}
}
