// Package localsa_test proves --service-account-token-verification=local against a real
// kube-apiserver: ServiceAccount tokens are verified with the keys the API server publishes, the
// API server's own tokenreviews counter stays still under load, the refusals hold, a new signing
// key of the API server is picked up, and a token never seen before is accepted with the API
// server stopped.
package localsa_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"

	"github.com/rbac-proxy/rbac-proxy/internal/satest"
	"github.com/rbac-proxy/rbac-proxy/test/framework"
)

const (
	audience = "rbac-proxy"
	// identities and clients scrape the proxy scrapes times in all.
	identities = 10
	clients    = 50
	scrapes    = 2000
)

var (
	cp       *framework.ControlPlane
	proxyBin string
	// signer is the API server's service-account signing key: the test mints with it what
	// TokenRequest cannot make (an expired token, a legacy Secret token).
	signer *satest.Key
	// signerFiles are signer's private and public key files.
	signerFiles [2]string
)

// issuer is the control planes' service-account issuer, fixed so that a second control plane
// (TestKeyRotation) is the same issuer with other keys.
const issuer = "https://issuer.localsa.test"

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	ctx := context.Background()
	var err error
	if proxyBin, err = framework.Build(ctx, "./cmd/proxy"); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	defer os.RemoveAll(filepath.Dir(proxyBin))
	dir, err := os.MkdirTemp("", "rbac-proxy-localsa-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if signer, err = satest.NewKey(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	private, public := filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	signerFiles = [2]string{private, public}
	if err := signer.WriteFiles(private, public); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cp, err = framework.Start(ctx, framework.Options{APIServerArgs: map[string][]string{
		"service-account-issuer":           {issuer},
		"service-account-signing-key-file": {private},
		"service-account-key-file":         {public},
	}})
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: starting the control plane: %v\n", err)
		return 1
	}
	code := m.Run()
	if code != 0 {
		cp.DumpLogs(os.Stderr)
	}
	if err := cp.Stop(); err != nil { // the outage test may have stopped it already
		fmt.Fprintf(os.Stderr, "stopping the control plane: %v\n", err)
	}
	return code
}

// tokenReviews is the API server's own count of the TokenReviews it has answered.
func tokenReviews(t *testing.T) int {
	t.Helper()
	n, err := cp.RequestsTotal(context.Background(), "tokenreviews")
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// upstream records the identity the proxy forwards.
type upstream struct {
	*httptest.Server
	mu    sync.Mutex
	users map[string]string // user → groups header
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{users: map[string]string{}}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.users[r.Header.Get("X-Remote-User")] = r.Header.Get("X-Remote-Groups")
		u.mu.Unlock()
		_, _ = w.Write([]byte("gpu_temp 41\n"))
	}))
	t.Cleanup(u.Close)
	return u
}

type proxy struct {
	*framework.Proxy
	up *upstream
}

// startProxy runs the proxy in local mode with the credentials of a ServiceAccount of its own:
// the issuer discovery it needs is granted to every ServiceAccount by the API server's default
// system:service-account-issuer-discovery binding.
func startProxy(t *testing.T, ns string, extra ...string) *proxy {
	t.Helper()
	ctx := context.Background()
	kubeconfig, err := cp.ServiceAccountKubeconfig(ctx, ns, "rbac-proxy")
	if err != nil {
		t.Fatal(err)
	}
	// TokenReviews, for the tokens that are not verified locally.
	_, err = cp.Clientset.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "rbac-proxy-auth-delegator-"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:auth-delegator"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "rbac-proxy"}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	up := newUpstream(t)
	args := append([]string{
		"--upstream=" + up.URL + "/",
		"--kubeconfig=" + kubeconfig,
		"--service-account-token-verification=local",
		"--auth-token-audiences=" + audience,
		"--auth-header-fields-enabled",
		"--authz=static", "--allowed-groups=system:serviceaccounts",
	}, extra...)
	p, err := framework.StartProxy(ctx, proxyBin, framework.ProxyOptions{Args: args, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("proxy log:\n%s", p.Log())
		}
		_ = p.Stop()
	})
	return &proxy{Proxy: p, up: up}
}

func httpClient() *http.Client {
	// The proxy serves a generated self-signed certificate; what is tested is its answer.
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
}

func (p *proxy) scrape(t *testing.T, c *http.Client, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, p.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func namespace(t *testing.T) string {
	t.Helper()
	ns, err := cp.CreateNamespace(context.Background(), "localsa", nil)
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

func requestToken(t *testing.T, ns, name string, seconds int64, audiences ...string) string {
	t.Helper()
	ctx := context.Background()
	if _, err := cp.ServiceAccountToken(ctx, ns, name, audiences); err != nil { // creates the ServiceAccount
		t.Fatal(err)
	}
	tr, err := cp.Clientset.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: audiences, ExpirationSeconds: ptr.To(seconds)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

// TestNoTokenReviewsUnderLoad: 2,000 scrapes from 50 clients with 10 identities cost the API
// server no TokenReview, and each identity reaches the upstream as TokenReview names it.
func TestNoTokenReviewsUnderLoad(t *testing.T) {
	ns := namespace(t)
	p := startProxy(t, ns)
	tokens := make([]string, identities)
	for i := range tokens {
		tokens[i] = requestToken(t, ns, fmt.Sprintf("scraper-%d", i), 3600, audience)
	}

	before := tokenReviews(t)
	start := time.Now()
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hc := httpClient()
			for range scrapes / clients {
				req, _ := http.NewRequest(http.MethodGet, p.URL+"/metrics", nil)
				req.Header.Set("Authorization", "Bearer "+tokens[c%identities])
				resp, err := hc.Do(req)
				if err != nil || resp.StatusCode != http.StatusOK {
					failed.Add(1)
				} else {
					ok.Add(1)
				}
				if resp != nil {
					resp.Body.Close()
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	after := tokenReviews(t)
	t.Logf("%d scrapes answered 200 (%d not) from %d clients with %d identities in %v; the API server's tokenreviews: %d before, %d after",
		ok.Load(), failed.Load(), clients, identities, elapsed.Round(time.Millisecond), before, after)
	if ok.Load() != scrapes {
		t.Fatalf("%d of %d scrapes answered 200", ok.Load(), scrapes)
	}
	if after != before {
		t.Fatalf("the API server answered %d TokenReviews for %d scrapes, want 0", after-before, scrapes)
	}

	// The counter does count: a token of another issuer goes to a TokenReview.
	other, err := satest.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	foreign, _ := other.Sign(satest.Token{Issuer: "https://other-cluster.example", Audiences: []string{audience}, Namespace: ns, Name: "scraper-0", UID: "x",
		IssuedAt: time.Now(), Expiry: time.Now().Add(time.Hour)})
	if code := p.scrape(t, httpClient(), foreign); code != http.StatusUnauthorized {
		t.Fatalf("a token of another cluster's issuer: %d, want 401", code)
	}
	if n := tokenReviews(t) - after; n != 1 {
		t.Fatalf("%d TokenReviews for a token of another issuer, want 1 (the counter counts)", n)
	}

	// The identity is the one TokenReview gives.
	for i, tok := range tokens {
		tr, err := cp.Clientset.AuthenticationV1().TokenReviews().Create(context.Background(), &authenticationv1.TokenReview{
			Spec: authenticationv1.TokenReviewSpec{Token: tok, Audiences: []string{audience}}}, metav1.CreateOptions{})
		if err != nil || !tr.Status.Authenticated {
			t.Fatalf("TokenReview of identity %d: %v %+v", i, err, tr.Status)
		}
		p.up.mu.Lock()
		groups, seen := p.up.users[tr.Status.User.Username]
		p.up.mu.Unlock()
		if want := strings.Join(tr.Status.User.Groups, "|"); !seen || groups != want {
			t.Fatalf("upstream saw %s with groups %q (seen %v), TokenReview says %q", tr.Status.User.Username, groups, seen, want)
		}
	}
}

// TestRefusals: what local verification refuses never reaches the upstream, and costs no
// TokenReview unless the flags send it there.
func TestRefusals(t *testing.T) {
	ns := namespace(t)
	ctx := context.Background()
	sa, err := cp.Clientset.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "legacy"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A Secret-based token as the token controller would write it: the API server accepts it.
	legacy, err := signer.Sign(satest.Token{Legacy: true, Namespace: ns, Name: "legacy", UID: string(sa.UID), SecretName: "legacy-token"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cp.Clientset.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "legacy-token", Annotations: map[string]string{
			corev1.ServiceAccountNameKey: "legacy", corev1.ServiceAccountUIDKey: string(sa.UID)}},
		Type: corev1.SecretTypeServiceAccountToken,
		Data: map[string][]byte{corev1.ServiceAccountTokenKey: []byte(legacy), "namespace": []byte(ns)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The legacy token is one the API server accepts, for its own audience.
	tr, err := cp.Clientset.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: legacy}}, metav1.CreateOptions{})
	if err != nil || !tr.Status.Authenticated {
		t.Fatalf("the API server does not accept the legacy token: %v %+v", err, tr.Status)
	}
	if got := issuerOf(t); got != issuer {
		t.Fatalf("the API server's issuer is %q, want %q", got, issuer)
	}
	now := time.Now()
	expired, _ := signer.Sign(satest.Token{Issuer: issuer, Audiences: []string{audience}, Namespace: ns, Name: "legacy", UID: string(sa.UID),
		IssuedAt: now.Add(-2 * time.Hour), Expiry: now.Add(-time.Hour)})
	other, _ := satest.NewKey()
	foreign, _ := other.Sign(satest.Token{Issuer: "https://other-cluster.example", Audiences: []string{audience}, Namespace: ns, Name: "legacy", UID: string(sa.UID),
		IssuedAt: now, Expiry: now.Add(time.Hour)})
	forged, _ := other.Sign(satest.Token{Issuer: issuer, Audiences: []string{audience}, Namespace: ns, Name: "legacy", UID: string(sa.UID),
		IssuedAt: now, Expiry: now.Add(time.Hour)})

	refusing := startProxy(t, ns)
	reviewing := startProxy(t, ns, "--service-account-legacy-tokens=review", "--service-account-long-lived-tokens=review")
	cases := []struct {
		name          string
		token         string
		p             *proxy
		code, reviews int
	}{
		{"the API server's audience", requestToken(t, ns, "legacy", 3600), refusing, 401, 0},
		{"expired", expired, refusing, 401, 0},
		{"signed by a key the issuer does not publish", forged, refusing, 401, 0},
		{"another cluster's issuer: reviewed, and refused by the API server", foreign, refusing, 401, 1},
		{"48 h long", requestToken(t, ns, "legacy", 48*3600, audience), refusing, 401, 0},
		{"48 h long, reviewed by choice", requestToken(t, ns, "legacy", 48*3600, audience), reviewing, 200, 1},
		{"legacy Secret token", legacy, refusing, 401, 0},
		// A Secret-based token has no audience: the API server accepts it only for its own
		// audiences (checked below), so a review for the proxy's audience refuses it too.
		{"legacy Secret token, reviewed by choice", legacy, reviewing, 401, 1},
		{"control: a good token", requestToken(t, ns, "legacy", 3600, audience), refusing, 200, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := tokenReviews(t)
			if code := tc.p.scrape(t, httpClient(), tc.token); code != tc.code {
				t.Fatalf("answered %d, want %d", code, tc.code)
			}
			if n := tokenReviews(t) - before; n != tc.reviews {
				t.Fatalf("%d TokenReviews, want %d", n, tc.reviews)
			}
		})
	}
}

// issuerOf is the API server's service-account issuer, from its discovery document.
func issuerOf(t *testing.T) string {
	t.Helper()
	raw, err := cp.Clientset.CoreV1().RESTClient().Get().AbsPath("/.well-known/openid-configuration").DoRaw(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(raw, []byte(`"issuer":"`))
	if i < 0 {
		t.Fatalf("no issuer in %s", raw)
	}
	rest := raw[i+len(`"issuer":"`):]
	return string(rest[:bytes.IndexByte(rest, '"')])
}

// TestAPIServerAudienceRefusedAtStart: the proxy does not start when its audience is the API
// server's issuer, which is the API server's own audience unless --api-audiences says otherwise.
func TestAPIServerAudienceRefusedAtStart(t *testing.T) {
	ns := namespace(t)
	kubeconfig, err := cp.ServiceAccountKubeconfig(context.Background(), ns, "rbac-proxy")
	if err != nil {
		t.Fatal(err)
	}
	p, err := framework.StartProxy(context.Background(), proxyBin, framework.ProxyOptions{Dir: t.TempDir(), Args: []string{
		"--upstream=http://127.0.0.1:1/", "--kubeconfig=" + kubeconfig,
		"--service-account-token-verification=local", "--auth-token-audiences=" + issuerOf(t),
		"--authz=static", "--allowed-groups=system:serviceaccounts",
	}})
	if err == nil {
		_ = p.Stop()
		t.Fatal("started with the API server's issuer as its audience")
	}
	if !strings.Contains(err.Error(), "the API server's own issuer") {
		t.Fatalf("refused for another reason: %v", err)
	}
}

// TestKeyRotation: the API server restarted with a second signing key (the old one still
// published, as in a rotation) is picked up at the first token of the new key. The test
// framework restarts no kube-apiserver alone, so the restart is a second control plane with the
// same issuer and both keys, signing with the new one; the proxy reaches whichever runs through
// a front that passes the two discovery documents through unchanged (with the admin's
// credentials), so the address the proxy knows stays the same.
func TestKeyRotation(t *testing.T) {
	ctx := context.Background()
	var backend atomic.Pointer[framework.ControlPlane]
	backend.Store(cp)
	var jwksReads atomic.Int64
	front := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/openid-configuration" && r.URL.Path != "/openid/v1/jwks" {
			http.NotFound(w, r)
			return
		}
		if r.URL.Path == "/openid/v1/jwks" {
			jwksReads.Add(1)
		}
		raw, err := backend.Load().Clientset.CoreV1().RESTClient().Get().AbsPath(r.URL.Path).DoRaw(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(raw)
	}))
	defer front.Close()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["front"] = &clientcmdapi.Cluster{Server: front.URL,
		CertificateAuthorityData: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: front.Certificate().Raw})}
	kc.AuthInfos["front"] = &clientcmdapi.AuthInfo{Token: "the-front-uses-its-own"}
	kc.Contexts["front"] = &clientcmdapi.Context{Cluster: "front", AuthInfo: "front"}
	kc.CurrentContext = "front"
	kubeconfig := filepath.Join(t.TempDir(), "front.kubeconfig")
	if err := clientcmd.WriteToFile(*kc, kubeconfig); err != nil {
		t.Fatal(err)
	}
	up := newUpstream(t)
	fp, err := framework.StartProxy(ctx, proxyBin, framework.ProxyOptions{Dir: t.TempDir(), Args: []string{
		"--upstream=" + up.URL + "/", "--kubeconfig=" + kubeconfig,
		"--service-account-token-verification=local", "--auth-token-audiences=" + audience,
		"--authz=static", "--allowed-groups=system:serviceaccounts",
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer fp.Stop()
	p := &proxy{Proxy: fp, up: up}
	c := httpClient()

	ns := namespace(t)
	oldToken := requestToken(t, ns, "scraper", 3600, audience)
	if code := p.scrape(t, c, oldToken); code != http.StatusOK {
		t.Fatalf("a token of the first key: %d", code)
	}

	newKey, err := satest.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	newPrivate, newPublic := filepath.Join(dir, "new.key"), filepath.Join(dir, "new.pub")
	if err := newKey.WriteFiles(newPrivate, newPublic); err != nil {
		t.Fatal(err)
	}
	restarted, err := framework.Start(ctx, framework.Options{APIServerArgs: map[string][]string{
		"service-account-issuer":           {issuer},
		"service-account-signing-key-file": {newPrivate},
		"service-account-key-file":         {signerFiles[1], newPublic},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer restarted.Stop()
	backend.Store(restarted)
	readsBefore := jwksReads.Load()

	ns2, err := restarted.CreateNamespace(ctx, "localsa", nil)
	if err != nil {
		t.Fatal(err)
	}
	newToken, err := restarted.ServiceAccountToken(ctx, ns2, "scraper", []string{audience})
	if err != nil {
		t.Fatal(err)
	}
	if kid := keyID(t, newToken); kid != newKey.ID {
		t.Fatalf("the restarted API server signs with key %q, want the new one %q", kid, newKey.ID)
	}
	for i, tok := range []string{newToken, oldToken, newToken} {
		if code := p.scrape(t, c, tok); code != http.StatusOK {
			t.Fatalf("token %d after the rotation: %d, want 200\n%s", i, code, fp.Log())
		}
	}
	if n := jwksReads.Load() - readsBefore; n != 1 {
		t.Fatalf("%d key set reads after the rotation, want 1 (at the first token of the new key)", n)
	}
}

// keyID is the kid of a JWT's header.
func keyID(t *testing.T, token string) string {
	t.Helper()
	header, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}

// TestZOutage runs last (go test runs tests in source order; the name says so too): with the
// control plane stopped, tokens never presented before but validly signed are accepted.
func TestZOutage(t *testing.T) {
	ns := namespace(t)
	p := startProxy(t, ns)
	seen := requestToken(t, ns, "scraper", 3600, audience)
	unseen := []string{requestToken(t, ns, "scraper", 3600, audience), requestToken(t, ns, "other-scraper", 3600, audience)}
	c := httpClient()
	if code := p.scrape(t, c, seen); code != http.StatusOK {
		t.Fatalf("before the outage: %d", code)
	}
	if err := cp.Stop(); err != nil {
		t.Fatalf("stopping the control plane: %v", err)
	}
	if _, err := cp.Clientset.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{}); err == nil {
		t.Fatal("the API server still answers")
	}
	for i, tok := range append(unseen, seen) {
		if code := p.scrape(t, c, tok); code != http.StatusOK {
			t.Fatalf("token %d with the API server stopped: %d, want 200", i, code)
		}
	}
	p.up.mu.Lock()
	defer p.up.mu.Unlock()
	users := make([]string, 0, len(p.up.users))
	for u := range p.up.users {
		users = append(users, u)
	}
	slices.Sort(users)
	t.Logf("with the API server stopped the upstream saw %v", users)
}
