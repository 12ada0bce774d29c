package config

import (
	"testing"
)

func TestServiceAccountTokenFlags(t *testing.T) {
	local := "--service-account-token-verification=local"
	cases := []struct {
		name  string
		args  []string
		field string // "" accepted; else the flag named by the one error
	}{
		{"review needs no audience", nil, ""},
		{"local with the proxy's audience", []string{local, "--auth-token-audiences=rbac-proxy"}, ""},
		{"local without an audience", []string{local}, "--auth-token-audiences"},
		{"local with the API server's audience", []string{local, "--auth-token-audiences=rbac-proxy,https://kubernetes.default.svc"}, "--auth-token-audiences"},
		{"local with an OIDC issuer", []string{local, "--auth-token-audiences=rbac-proxy", "--oidc-issuer=https://issuer.example", "--oidc-clientID=rbac-proxy"}, "--service-account-token-verification"},
		{"unknown mode", []string{"--service-account-token-verification=jwks"}, "--service-account-token-verification"},
		{"unknown legacy fallback", []string{"--service-account-legacy-tokens=accept"}, "--service-account-legacy-tokens"},
		{"unknown long-lived fallback", []string{"--service-account-long-lived-tokens=accept"}, "--service-account-long-lived-tokens"},
		{"no lifetime", []string{"--service-account-max-token-expiration=0s"}, "--service-account-max-token-expiration"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig(t, append(append([]string{}, minimalArgs...), tc.args...)...)
			errs := FieldErrors(err)
			switch {
			case tc.field == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.field != "" && (len(errs) != 1 || errs[0].Field != tc.field):
				t.Fatalf("got %v, want one error on %s", err, tc.field)
			}
		})
	}
}

func TestIsAPIServerAudience(t *testing.T) {
	for _, tc := range []struct {
		aud, issuer string
		want        bool
	}{
		{"https://kubernetes.default.svc.cluster.local", "", true},
		{"https://127.0.0.1:6443/", "https://127.0.0.1:6443", true},
		{"https://127.0.0.1:6443", "https://127.0.0.1:6443/", true},
		{"rbac-proxy", "https://127.0.0.1:6443", false},
	} {
		if got := IsAPIServerAudience(tc.aud, tc.issuer); got != tc.want {
			t.Errorf("IsAPIServerAudience(%q, %q) = %v, want %v", tc.aud, tc.issuer, got, tc.want)
		}
	}
}
