package review

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	authnv1 "k8s.io/api/authentication/v1"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
	"github.com/rbac-proxy/rbac-proxy/proxy/internal/fakeapi"
)

// issuer is a local OpenID Connect issuer: discovery, one RSA key, and tokens it signs.
type issuer struct {
	srv   *httptest.Server
	key   *rsa.PrivateKey
	caPEM string
}

func newIssuer(t testing.TB) *issuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	iss := &issuer{key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": iss.srv.URL, "jwks_uri": iss.srv.URL + "/keys",
			"id_token_signing_alg_values_supported": []string{"RS256"}})
	})
	mux.HandleFunc("/keys", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
			"kty": "RSA", "alg": "RS256", "use": "sig", "kid": "k1",
			"n": base64.RawURLEncoding.EncodeToString(key.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(key.E)).Bytes()),
		}}})
	})
	iss.srv = httptest.NewTLSServer(mux)
	t.Cleanup(iss.srv.Close)
	iss.caPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: iss.srv.Certificate().Raw}))
	return iss
}

// token signs claims, with iss, exp and iat filled in unless given.
func (i *issuer) token(t testing.TB, claims map[string]any) string {
	t.Helper()
	c := map[string]any{"iss": i.srv.URL, "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
	for k, v := range claims {
		c[k] = v
	}
	h, _ := json.Marshal(map[string]string{"alg": "RS256", "kid": "k1", "typ": "JWT"})
	p, _ := json.Marshal(c)
	signed := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p)
	sum := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, i.key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestOIDCFlagsAuthenticate(t *testing.T) {
	iss := newIssuer(t)
	ca := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(ca, []byte(iss.caPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default().Authentication
	cfg.OIDC.IssuerURL, cfg.OIDC.ClientID, cfg.OIDC.CAFile = iss.srv.URL, "app", ca
	cfg.OIDC.UsernamePrefix, cfg.OIDC.GroupsPrefix = "oidc:", "oidc:"
	tokens, err := newJWTTokens(t.Context(), cfg, time.Second, prometheus.NewRegistry(), logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	good := iss.token(t, map[string]any{"aud": "app", "email": "alice@example.com", "email_verified": true, "groups": []string{"a", "b"}})
	eventually(t, func() bool { _, ok, _ := tokens.AuthenticateToken(t.Context(), good); return ok })
	resp, _, _ := tokens.AuthenticateToken(t.Context(), good)
	if u := resp.User; u.GetName() != "oidc:alice@example.com" || strings.Join(u.GetGroups(), ",") != "oidc:a,oidc:b" {
		t.Fatalf("user %q groups %q, want oidc:alice@example.com and oidc:a,oidc:b", u.GetName(), u.GetGroups())
	}
	for name, tok := range map[string]string{
		"another audience":   iss.token(t, map[string]any{"aud": "other", "email": "alice@example.com"}),
		"expired":            iss.token(t, map[string]any{"aud": "app", "email": "alice@example.com", "exp": time.Now().Add(-time.Minute).Unix()}),
		"email not verified": iss.token(t, map[string]any{"aud": "app", "email": "alice@example.com", "email_verified": false}),
		"no username claim":  iss.token(t, map[string]any{"aud": "app", "sub": "alice"}),
		"another issuer":     newIssuer(t).token(t, map[string]any{"aud": "app", "email": "alice@example.com"}),
		"signature tampered": good[:len(good)-4] + "AAAA",
		"not a JWT":          "opaque",
	} {
		if resp, ok, _ := tokens.AuthenticateToken(t.Context(), tok); ok {
			t.Errorf("%s: accepted as %q", name, resp.User.GetName())
		}
	}

	// Without prefixes, an issuer outside the cluster cannot name Kubernetes' own identities.
	cfg.OIDC.UsernamePrefix, cfg.OIDC.GroupsPrefix = "", ""
	bare, err := newJWTTokens(t.Context(), cfg, time.Second, prometheus.NewRegistry(), logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	plain := iss.token(t, map[string]any{"aud": "app", "email": "alice@example.com", "email_verified": true, "groups": []string{"a"}})
	eventually(t, func() bool { _, ok, _ := bare.AuthenticateToken(t.Context(), plain); return ok })
	for name, tok := range map[string]string{
		"a system: user":  iss.token(t, map[string]any{"aud": "app", "email": "system:serviceaccount:kube-system:x", "email_verified": true}),
		"a system: group": iss.token(t, map[string]any{"aud": "app", "email": "alice@example.com", "email_verified": true, "groups": []string{"a", "system:masters"}}),
	} {
		if resp, ok, _ := bare.AuthenticateToken(t.Context(), tok); ok {
			t.Errorf("%s: accepted as %q %q", name, resp.User.GetName(), resp.User.GetGroups())
		}
	}
}

func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestOIDCFlagErrorsNameTheFlag(t *testing.T) {
	badCA := filepath.Join(t.TempDir(), "bad.crt")
	if err := os.WriteFile(badCA, []byte("not PEM"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		set  func(*config.OIDCConfig)
		want string // "" for no error
	}{
		{"kube-rbac-proxy defaults", func(*config.OIDCConfig) {}, ""},
		{"unsupported algorithm", func(o *config.OIDCConfig) { o.SigningAlgs = []string{"RS256", "HS256"} },
			`--oidc-sign-alg: Unsupported value: "HS256": supported values: "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512"`},
		{"missing CA file", func(o *config.OIDCConfig) { o.CAFile = "/does/not/exist" }, `--oidc-ca-file: Invalid value: "/does/not/exist"`},
		{"CA file not PEM", func(o *config.OIDCConfig) { o.CAFile = badCA }, `--oidc-ca-file: Invalid value: "` + badCA + `"`},
		{"issuer with a query", func(o *config.OIDCConfig) { o.IssuerURL = "https://issuer.example.com/?a=b" }, `--oidc-issuer: Invalid value: "https://issuer.example.com/?a=b"`},
		{"username claim with a prefix without groups", func(o *config.OIDCConfig) { o.GroupsClaim, o.GroupsPrefix = "", "" }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := config.Default().Authentication.OIDC
			o.IssuerURL, o.ClientID = "https://issuer.example.com", "app"
			tc.set(&o)
			_, err := oidcAuthenticator(o)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// authnConfig is an AuthenticationConfiguration for iss with the given audiences and extra
// YAML under the jwt entry.
func authnConfig(iss *issuer, audiences, extra string) string {
	return `apiVersion: apiserver.config.k8s.io/v1
kind: AuthenticationConfiguration
jwt:
- issuer:
    url: ` + iss.srv.URL + `
    audiences: ` + audiences + `
    audienceMatchPolicy: MatchAny
    certificateAuthority: |
` + indent(iss.caPEM, "      ") + `  claimMappings:
    username:
      expression: "'jwt:' + claims.sub"
` + extra
}

func indent(s, by string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		if l != "" {
			b.WriteString(by + l)
		}
	}
	return b.String()
}

func TestParseAuthenticationConfig(t *testing.T) {
	iss := newIssuer(t)
	for _, tc := range []struct {
		name, file, want string
	}{
		{"valid", authnConfig(iss, "[a, b]", "  claimValidationRules:\n  - expression: \"claims.team == 'gpu'\"\n    message: only the gpu team\n  userValidationRules:\n  - expression: \"!user.username.startsWith('jwt:system:')\"\n    message: no system users\n"), ""},
		{"empty", "", "the file is empty"},
		{"another kind", "apiVersion: apiserver.config.k8s.io/v1\nkind: AuthorizationConfiguration\n", "AuthorizationConfiguration"},
		{"unknown field", authnConfig(iss, "[a]", "  claimMapping: {}\n"), `unknown field "jwt[0].claimMapping"`},
		{"http issuer", strings.Replace(authnConfig(iss, "[a]", ""), "url: https://", "url: http://", 1), "jwt[0].issuer.url: Invalid value"},
		{"no audience", authnConfig(iss, "[]", ""), "jwt[0].issuer.audiences: Required value"},
		{"bad CEL", authnConfig(iss, "[a]", "  claimValidationRules:\n  - expression: \"claims.team ==\"\n"), "jwt[0].claimValidationRules[0].expression: Invalid value"},
		{"anonymous", authnConfig(iss, "[a]", "anonymous:\n  enabled: true\n"), "anonymous: Forbidden: rbac-proxy reads only the jwt section"},
		{"the API server's audience", authnConfig(iss, "[a, https://kubernetes.default.svc.cluster.local]", ""), `jwt[0].issuer.audiences[1]: Invalid value: "https://kubernetes.default.svc.cluster.local": a token for the API server's own audience`},
		{"the issuer as audience", authnConfig(iss, "["+iss.srv.URL+"]", ""), "jwt[0].issuer.audiences[0]: Invalid value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseAuthenticationConfig([]byte(tc.file))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestAuthenticationConfigReload: a changed file replaces the authenticators; a bad one is
// counted and logged, and the last good one stays.
func TestAuthenticationConfigReload(t *testing.T) {
	iss := newIssuer(t)
	file := filepath.Join(t.TempDir(), "authn.yaml")
	write := func(s string) {
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rule := "  claimValidationRules:\n  - expression: \"claims.team == 'gpu'\"\n    message: only the gpu team\n"
	write(authnConfig(iss, "[a]", rule))
	f, err := newAuthnConfigFile(t.Context(), file, prometheus.NewRegistry(), logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	tokA := iss.token(t, map[string]any{"aud": "a", "sub": "alice", "team": "gpu"})
	tokB := iss.token(t, map[string]any{"aud": "b", "sub": "alice", "team": "gpu"})
	accepts := func(tok string) (string, bool) {
		resp, ok, _ := f.tokens.AuthenticateToken(t.Context(), tok)
		if !ok {
			return "", false
		}
		return resp.User.GetName(), true
	}
	eventually(t, func() bool { _, ok := accepts(tokA); return ok })
	if name, _ := accepts(tokA); name != "jwt:alice" {
		t.Fatalf("user %q, want jwt:alice (the CEL mapping)", name)
	}
	if _, ok := accepts(iss.token(t, map[string]any{"aud": "a", "sub": "alice", "team": "web"})); ok {
		t.Fatal("a token the validation rule refuses was accepted")
	}
	if _, ok := accepts(tokB); ok {
		t.Fatal("audience b accepted before the file allows it")
	}

	write(authnConfig(iss, "[b]", rule))
	if err := f.refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, ok := accepts(tokB); !ok {
		t.Fatal("audience b refused after the reload")
	}
	if _, ok := accepts(tokA); ok {
		t.Fatal("audience a still accepted after the reload")
	}

	write(authnConfig(iss, "[a]", "  claimValidationRules:\n  - expression: \"claims.team ==\"\n"))
	if err := f.refresh(t.Context()); err == nil || !strings.Contains(err.Error(), "jwt[0].claimValidationRules[0].expression") {
		t.Fatalf("refresh of a bad file: %v, want the field named", err)
	}
	if _, ok := accepts(tokB); !ok {
		t.Fatal("the last good file was dropped for a bad one")
	}
	if err := f.refresh(t.Context()); err != nil {
		t.Fatalf("an unchanged bad file is reported again: %v", err)
	}

	// The run loop counts what refresh reports.
	write(authnConfig(iss, "[a]", "anonymous:\n  enabled: true\n"))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { f.run(ctx, 10*time.Millisecond); close(done) }()
	eventually(t, func() bool {
		var m dto.Metric
		_ = f.reloads.WithLabelValues("error").Write(&m)
		return m.GetCounter().GetValue() == 1
	})
	cancel()
	<-done
}

// BenchmarkOIDCToken is the cost of one request's token with --oidc-issuer: nothing is cached,
// every request verifies the RS256 signature (2048-bit key) and maps the claims.
func BenchmarkOIDCToken(b *testing.B) {
	iss := newIssuer(b)
	cfg := config.Default().Authentication
	cfg.OIDC.IssuerURL, cfg.OIDC.ClientID, cfg.OIDC.UsernameClaim = iss.srv.URL, "app", "sub"
	cfg.OIDC.CAFile = filepath.Join(b.TempDir(), "ca.crt")
	if err := os.WriteFile(cfg.OIDC.CAFile, []byte(iss.caPEM), 0o600); err != nil {
		b.Fatal(err)
	}
	tokens, err := newJWTTokens(b.Context(), cfg, time.Second, prometheus.NewRegistry(), logr.Discard())
	if err != nil {
		b.Fatal(err)
	}
	tok := iss.token(b, map[string]any{"aud": "app", "sub": "prometheus", "groups": []string{"monitoring"}})
	for deadline := time.Now().Add(20 * time.Second); ; {
		if _, ok, _ := tokens.AuthenticateToken(b.Context(), tok); ok {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("the issuer was not discovered within 20s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, ok, err := tokens.AuthenticateToken(b.Context(), tok); !ok {
			b.Fatal(err)
		}
	}
}

// TestJWTAloneVerifiesTokens: with --oidc-issuer a token the API server would accept is refused
// and no TokenReview is sent.
func TestJWTAloneVerifiesTokens(t *testing.T) {
	iss := newIssuer(t)
	api := fakeapi.New(t)
	api.AddToken("api-token", authnv1.UserInfo{Username: "system:serviceaccount:monitoring:prometheus"})
	cfg := config.Default()
	cfg.Authentication.OIDC.IssuerURL, cfg.Authentication.OIDC.ClientID = iss.srv.URL, "app"
	cfg.Authentication.OIDC.UsernameClaim = "sub"
	cfg.Authentication.OIDC.CAFile = filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(cfg.Authentication.OIDC.CAFile, []byte(iss.caPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	clients := clientsOf(t, api)
	authn, _, _, err := New(cfg, Options{Clients: &clients, Context: t.Context()})
	if err != nil {
		t.Fatal(err)
	}
	request := func(token string) (string, error) {
		r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		r.Header.Set("Authorization", "Bearer "+token)
		resp, ok, err := authn.AuthenticateRequest(r)
		if !ok {
			return "", err
		}
		return resp.User.GetName(), nil
	}
	good := iss.token(t, map[string]any{"aud": "app", "sub": "alice"})
	eventually(t, func() bool { _, err := request(good); return err == nil })
	if name, _ := request(good); name != "alice" {
		t.Fatalf("user %q, want alice", name)
	}
	if name, err := request("api-token"); err == nil {
		t.Fatalf("a token only the API server knows was accepted as %q", name)
	}
	if n := api.TokenReviews.Load(); n != 0 {
		t.Fatalf("%d TokenReviews, want 0", n)
	}
}
