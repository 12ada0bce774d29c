package proxy_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authzv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rbac-proxy/rbac-proxy/internal/testpki"
	"github.com/rbac-proxy/rbac-proxy/test/framework"
)

// pki is the CA every test uses for serving and client certificates.
type pki struct {
	ca  *testpki.CA
	dir string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	ca, err := testpki.NewCA("e2e-ca")
	if err != nil {
		t.Fatal(err)
	}
	return &pki{ca: ca, dir: t.TempDir()}
}

// servingFlags writes a serving certificate for 127.0.0.1.
func (p *pki) servingFlags(t *testing.T) []string {
	pair, err := p.ca.Server("127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := pair.Write(p.dir, "serving")
	if err != nil {
		t.Fatal(err)
	}
	return []string{"--tls-cert-file=" + cert, "--tls-private-key-file=" + key}
}

func (p *pki) clientCAFlag(t *testing.T) string {
	f := filepath.Join(p.dir, "client-ca.crt")
	if err := os.WriteFile(f, p.ca.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return "--client-ca-file=" + f
}

func (p *pki) clientCert(t *testing.T, cn string, orgs ...string) tls.Certificate {
	pair, err := p.ca.Client(cn, orgs...)
	if err != nil {
		t.Fatal(err)
	}
	return pair.TLS()
}

// client trusts the test CA and presents certs; HTTP/2 when the server offers it.
func (p *pki) client(certs ...tls.Certificate) *http.Client {
	return &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: p.ca.Pool(), Certificates: certs},
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 100,
	}}
}

// proxyProc is a running rbac-proxy binary.
type proxyProc struct {
	*framework.Proxy
}

// startProxy runs rbac-proxy with args (plus a listen address, and an endpoints port with
// endpoints) until the test ends, and waits until it serves TLS.
func startProxy(t *testing.T, args ...string) *proxyProc {
	t.Helper()
	return startProxyWith(t, framework.ProxyOptions{Args: args})
}

func startProxyWith(t *testing.T, o framework.ProxyOptions) *proxyProc {
	t.Helper()
	o.Dir = t.TempDir()
	return &proxyProc{framework.StartTestProxy(t, proxyBin, o)}
}

func (p *proxyProc) get(t *testing.T, c *http.Client, rawPath string, header http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, p.URL+rawPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", rawPath, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func bearer(token string) http.Header { return http.Header{"Authorization": {"Bearer " + token}} }

// upstream records what reaches it.
type upstream struct {
	mu   sync.Mutex
	seen []*http.Request
	hits atomic.Int64
	url  string
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: u, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	u.url = "http://" + ln.Addr().String() + "/"
	return u
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.hits.Add(1)
	u.mu.Lock()
	u.seen = append(u.seen, r.Clone(context.Background()))
	u.mu.Unlock()
	_, _ = io.WriteString(w, "upstream:"+r.URL.Path)
}

func (u *upstream) last(t *testing.T) *http.Request {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.seen) == 0 {
		t.Fatal("the upstream saw no request")
	}
	return u.seen[len(u.seen)-1]
}

// newNamespace creates a namespace for one test and deletes it afterwards.
func newNamespace(t *testing.T) string {
	t.Helper()
	return cp.TestNamespace(t, "proxy-e2e")
}

func token(t *testing.T, ns, sa string, audiences ...string) string {
	t.Helper()
	return cp.TestToken(t, ns, sa, audiences...)
}

// allowNonResource binds a ClusterRole allowing get on urls to subject.
func allowNonResource(t *testing.T, subject rbacv1.Subject, urls ...string) {
	t.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("proxy-e2e-%d", time.Now().UnixNano())
	_, err := cp.Clientset.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Rules:      []rbacv1.PolicyRule{{NonResourceURLs: urls, Verbs: []string{"get"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cp.Clientset.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: name},
		Subjects:   []rbacv1.Subject{subject},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cp.Clientset.RbacV1().ClusterRoleBindings().Delete(context.Background(), name, metav1.DeleteOptions{})
		_ = cp.Clientset.RbacV1().ClusterRoles().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}

// allowResource binds, in ns, a Role allowing get on resource/subresource named name.
func allowResource(t *testing.T, ns string, subject rbacv1.Subject, resource, subresource, name string) {
	t.Helper()
	ctx := context.Background()
	res := resource
	if subresource != "" {
		res += "/" + subresource
	}
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "proxy-e2e", Namespace: ns},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{res}, ResourceNames: []string{name}, Verbs: []string{"get"}}},
	}
	if _, err := cp.Clientset.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "proxy-e2e", Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "proxy-e2e"},
		Subjects:   []rbacv1.Subject{subject},
	}
	if _, err := cp.Clientset.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func saSubject(ns, name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: "ServiceAccount", Namespace: ns, Name: name}
}

func saUser(ns, name string) string { return "system:serviceaccount:" + ns + ":" + name }

// waitAllowed waits until the API server's RBAC authorizer (served from an
// informer cache) allows what a new binding grants, so that no test caches a
// denial that only came from that lag.
func waitAllowed(t *testing.T, spec authzv1.SubjectAccessReviewSpec) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		sar, err := cp.Clientset.AuthorizationV1().SubjectAccessReviews().Create(context.Background(),
			&authzv1.SubjectAccessReview{Spec: spec}, metav1.CreateOptions{})
		if err == nil && sar.Status.Allowed {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("RBAC does not allow %+v after 15s (err %v)", spec, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func saGroups(ns string) []string {
	return []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}
}

// waitNonResource waits until user with groups may get path.
func waitNonResource(t *testing.T, user string, groups []string, path string) {
	waitAllowed(t, authzv1.SubjectAccessReviewSpec{User: user, Groups: groups,
		NonResourceAttributes: &authzv1.NonResourceAttributes{Path: path, Verb: "get"}})
}

func rbacUser(name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: name}
}
