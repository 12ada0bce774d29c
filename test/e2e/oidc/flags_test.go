package oidc_test

import (
	"net/http"
	"testing"
	"time"
)

// TestOIDCFlags: kube-rbac-proxy's --oidc-* flags against the control plane's issuer. A token
// with the client ID as audience passes, with the user name from sub and the prefix; a token
// for another audience (the API server's own, which a TokenReview would accept), an expired one
// and one signed by another key are refused: with --oidc-issuer no TokenReview is sent.
func TestOIDCFlags(t *testing.T) {
	iss := discovery(t)
	ns := cp.TestNamespace(t, "oidc-e2e")
	user := "oidc:system:serviceaccount:" + ns + ":prometheus"
	p := proxy(t, "--oidc-issuer="+iss, "--oidc-clientID=rbac-proxy-metrics", "--oidc-ca-file="+caFile(),
		"--oidc-username-claim=sub", "--oidc-username-prefix=oidc:",
		"--authz=static", "--allowed-users="+user)

	good := cp.TestToken(t, ns, "prometheus", "rbac-proxy-metrics")
	if body := waitAccepted(t, p, good); body != user+"|" {
		t.Fatalf("upstream saw %q, want user %q and no groups", body, user+"|")
	}
	apiServers := cp.TestToken(t, ns, "prometheus")
	checkRefusals(t, p, []refusal{
		{"another audience", cp.TestToken(t, ns, "prometheus", "something-else"), http.StatusUnauthorized},
		{"the API server's audience", apiServers, http.StatusUnauthorized},
		{"expired", resign(t, good, -2*time.Hour, signer), http.StatusUnauthorized},
		{"signed by another key", resign(t, good, 0, foreignKey(t)), http.StatusUnauthorized},
		{"not a JWT", "opaque-token", http.StatusUnauthorized},
		{"valid but not allowed", cp.TestToken(t, ns, "grafana", "rbac-proxy-metrics"), http.StatusForbidden},
	})
	// The resigning itself is sound: the same claims signed again by the API server's key pass.
	if code, body := get(t, p, resign(t, good, 0, signer)); code != http.StatusOK {
		t.Fatalf("a token re-signed with the issuer's key: status %d (%q), want 200", code, body)
	}
}
