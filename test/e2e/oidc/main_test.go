// Package oidc_test proves the proxy's JWT authenticators (--oidc-* and --authentication-config)
// against a real issuer: the test control plane's own ServiceAccount issuer, which serves OIDC
// discovery and its keys. Tokens come from the TokenRequest API; expired ones are signed with
// the API server's own signing key, which this test supplies.
package oidc_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rbac-proxy/rbac-proxy/internal/testpki"
	"github.com/rbac-proxy/rbac-proxy/test/framework"
)

var (
	cp       *framework.ControlPlane
	proxyBin string
	// signer is the API server's ServiceAccount signing key; issuer its issuer URL.
	signer *rsa.PrivateKey
	issuer string
	// serving signs the proxies' serving certificates.
	serving *testpki.CA
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "rbac-proxy-oidc-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	keyFile, err := writeSigner(dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: writing the signing key: %v\n", err)
		return 1
	}
	if serving, err = testpki.NewCA("oidc-e2e"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if proxyBin, err = framework.Build(ctx, "./cmd/proxy"); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	defer os.RemoveAll(filepath.Dir(proxyBin))
	return framework.Main(m, framework.Options{APIServerArgs: map[string][]string{
		"service-account-key-file":         {keyFile},
		"service-account-signing-key-file": {keyFile},
		// The discovery document's jwks_uri is on the external host (with the secure port);
		// by default that is the host's default interface, where the API server does not listen.
		"external-hostname": {"127.0.0.1"},
	}}, &cp)
}

// writeSigner makes the key the API server signs ServiceAccount tokens with.
func writeSigner(dir string) (string, error) {
	var err error
	if signer, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return "", err
	}
	f := filepath.Join(dir, "sa.key")
	b := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(signer)})
	return f, os.WriteFile(f, b, 0o600)
}

// discovery lets anyone read the issuer's discovery document and keys, as the proxy does
// without credentials, and returns the issuer URL the document names.
func discovery(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	if issuer != "" {
		return issuer
	}
	_, err := cp.Clientset.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "oidc-e2e-anonymous-discovery"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:service-account-issuer-discovery"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "Group", Name: "system:unauthenticated"}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := cp.Clientset.CoreV1().RESTClient().Get().AbsPath("/.well-known/openid-configuration").DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Issuer string `json:"issuer"`
	}
	if err := json.Unmarshal(b, &doc); err != nil || doc.Issuer == "" {
		t.Fatalf("discovery document %s: %v", b, err)
	}
	issuer = doc.Issuer
	return issuer
}

// caFile is the CA of the API server's serving certificate, which the proxy verifies the issuer
// with.
func caFile() string { return cp.CAFile }

// resign is tok with its times moved by shift and signed by key (with tok's key id): an
// expired token when key is the API server's and shift is negative, a forged one otherwise.
func resign(t *testing.T, tok string, shift time.Duration, key *rsa.PrivateKey) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"exp", "iat", "nbf"} {
		if v, ok := claims[c].(float64); ok {
			claims[c] = int64(v) + int64(shift.Seconds())
		}
	}
	payload, err = json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	signed := parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload)
	sum := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// proxy runs rbac-proxy with args until the test ends; its upstream answers with the identity
// headers the proxy sent.
func proxy(t *testing.T, args ...string) *framework.Proxy {
	t.Helper()
	dir := t.TempDir()
	pair, err := serving.Server("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := pair.Write(dir, "serving")
	if err != nil {
		t.Fatal(err)
	}
	args = append([]string{"--tls-cert-file=" + cert, "--tls-private-key-file=" + key,
		"--upstream=" + echoUpstream(t), "--auth-header-fields-enabled", "-v=2"}, args...)
	return framework.StartTestProxy(t, proxyBin, framework.ProxyOptions{Args: args, Dir: dir})
}

// echoUpstream answers "user|groups" from the proxy's identity headers.
func echoUpstream(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Header.Get("X-Remote-User")+"|"+r.Header.Get("X-Remote-Groups"))
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String() + "/"
}

var client = &http.Client{Timeout: 15 * time.Second}

func init() {
	client.Transport = &http.Transport{TLSClientConfig: &tls.Config{}}
}

// get sends GET /metrics with tok to p: the status and the body.
func get(t *testing.T, p *framework.Proxy, tok string) (int, string) {
	t.Helper()
	client.Transport.(*http.Transport).TLSClientConfig.RootCAs = serving.Pool()
	req, err := http.NewRequest(http.MethodGet, p.URL+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitAccepted waits until p accepts tok (the proxy discovers the issuer in the background)
// and returns the body.
func waitAccepted(t *testing.T, p *framework.Proxy, tok string) string {
	t.Helper()
	var body string
	err := framework.Eventually(t.Context(), 60*time.Second, "the proxy to accept a valid token", func(context.Context) (bool, error) {
		code, b := get(t, p, tok)
		body = b
		return code == http.StatusOK, nil
	})
	if err != nil {
		t.Fatalf("%v; last answer %q", err, body)
	}
	return body
}

// refusals are the tokens every JWT configuration below must refuse.
type refusal struct {
	name, token string
	want        int
}

func checkRefusals(t *testing.T, p *framework.Proxy, cases []refusal) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if code, body := get(t, p, tc.token); code != tc.want {
				t.Fatalf("status %d (%q), want %d", code, body, tc.want)
			}
		})
	}
}

// foreignKey signs tokens no issuer published.
func foreignKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
