package proxy

import (
	"github.com/rbac-proxy/rbac-proxy/proxy/config"
	"github.com/rbac-proxy/rbac-proxy/proxy/internal/fakeapi"
	"github.com/rbac-proxy/rbac-proxy/proxy/review"

	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/rbac-proxy/rbac-proxy/internal/testpki"
)

// seenRequest is what the upstream received.
type seenRequest struct {
	Method, Path, RawPath, Proto string
	Header                       http.Header
}

// recorder is an upstream handler that records requests, and answers with
// serve, or else "upstream:" and the path.
type recorder struct {
	mu    sync.Mutex
	seen  []seenRequest
	hits  atomic.Int64
	serve http.HandlerFunc
}

func (u *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.hits.Add(1)
	u.mu.Lock()
	u.seen = append(u.seen, seenRequest{r.Method, r.URL.Path, r.URL.RawPath, r.Proto, r.Header.Clone()})
	u.mu.Unlock()
	if u.serve != nil {
		u.serve(w, r)
		return
	}
	_, _ = io.WriteString(w, "upstream:"+r.URL.Path)
}

func (u *recorder) last(t *testing.T) seenRequest {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.seen) == 0 {
		t.Fatal("the upstream saw no request")
	}
	return u.seen[len(u.seen)-1]
}

// testEnv holds a PKI and a running proxy.
type testEnv struct {
	t        testing.TB
	ca       *testpki.CA // signs the serving certificate and client certificates
	dir      string
	srv      *Server
	base     string
	cancel   context.CancelFunc
	done     chan error
	upstream *recorder
	// beforeRun, when set, sees the proxy between its Start and Run.
	beforeRun func(*Server)
}

func newTestEnv(t testing.TB) *testEnv {
	t.Helper()
	ca, err := testpki.NewCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	return &testEnv{t: t, ca: ca, dir: t.TempDir(), upstream: &recorder{}}
}

// servingFiles writes a serving certificate for 127.0.0.1 and returns the flags.
func (e *testEnv) servingFlags() []string {
	pair, err := e.ca.Server("127.0.0.1", "localhost")
	if err != nil {
		e.t.Fatal(err)
	}
	cert, key, err := pair.Write(e.dir, "serving")
	if err != nil {
		e.t.Fatal(err)
	}
	return []string{"--tls-cert-file=" + cert, "--tls-private-key-file=" + key}
}

func (e *testEnv) clientCAFlag() string {
	p := e.dir + "/client-ca.crt"
	if err := writeBytes(p, e.ca.CertPEM); err != nil {
		e.t.Fatal(err)
	}
	return "--client-ca-file=" + p
}

// start runs a proxy in front of the recorder (unless --upstream is given)
// with the fake API's clients (unless api is nil).
func (e *testEnv) start(api *fakeapi.API, args ...string) {
	e.t.Helper()
	if err := e.tryStart(api, args...); err != nil {
		e.t.Fatal(err)
	}
}

// startWithEndpointsPort starts the proxy with its endpoints on a port chosen here, and returns
// it. A free port can be taken by another process between its choice and the proxy's bind (the
// packages' tests run in parallel): then another is tried.
func (e *testEnv) startWithEndpointsPort(api *fakeapi.API, args ...string) string {
	e.t.Helper()
	for attempt := 0; ; attempt++ {
		port := freePort(e.t)
		err := e.tryStart(api, append([]string{"--proxy-endpoints-port=" + port}, args...)...)
		if err == nil {
			return port
		}
		if !errors.Is(err, syscall.EADDRINUSE) || attempt == 4 {
			e.t.Fatal(err)
		}
	}
}

func (e *testEnv) tryStart(api *fakeapi.API, args ...string) error {
	e.t.Helper()
	up := httptest.NewServer(e.upstream)
	e.t.Cleanup(up.Close)
	all := append([]string{"--secure-listen-address=127.0.0.1:0", "--upstream=" + up.URL + "/"}, e.servingFlags()...)
	all = append(all, args...)
	f := config.NewFlags("rbac-proxy")
	if err := f.Parse(all); err != nil {
		e.t.Fatal(err)
	}
	cfg, err := f.Config()
	if err != nil {
		e.t.Fatal(err)
	}
	opts := Options{}
	if api != nil {
		opts.Clients = clientsOf(e.t, api)
	}
	return e.tryStartConfig(cfg, opts)
}

func (e *testEnv) startConfig(cfg *config.Config, opts Options) {
	e.t.Helper()
	if err := e.tryStartConfig(cfg, opts); err != nil {
		e.t.Fatal(err)
	}
}

func (e *testEnv) tryStartConfig(cfg *config.Config, opts Options) error {
	e.t.Helper()
	srv, err := New(cfg, opts)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		return err
	}
	if e.beforeRun != nil {
		e.beforeRun(srv)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.srv, e.cancel, e.done = srv, cancel, make(chan error, 1)
	e.base = "https://" + srv.Addr("proxy")
	go func() { e.done <- srv.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		select {
		case <-e.done:
		case <-time.After(20 * time.Second):
			e.t.Error("proxy did not stop")
		}
	})
	return nil
}

// client returns an HTTPS client trusting the test CA, presenting certs.
func (e *testEnv) client(certs ...tls.Certificate) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(e.ca.Cert)
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: pool, Certificates: certs},
			ForceAttemptHTTP2: true,
		},
	}
}

// get sends GET rawPath (sent as is) with the given headers.
func (e *testEnv) get(c *http.Client, rawPath string, header http.Header) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.base+rawPath, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatalf("GET %s: %v", rawPath, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func bearer(token string) http.Header { return http.Header{"Authorization": {"Bearer " + token}} }

func writeBytes(p string, b []byte) error { return os.WriteFile(p, b, 0o600) }

func testNewCA() (*testpki.CA, error) { return testpki.NewCA("test-ca-2") }

// clientsOf returns the clients of the fake API.
func clientsOf(t testing.TB, api *fakeapi.API) *review.Clients {
	tokens, access := api.Clients(t)
	return &review.Clients{Tokens: tokens, Access: access}
}

// restConfigFor is a client configuration for host that dials through dial.
func restConfigFor(host string, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *rest.Config {
	return &rest.Config{Host: host, QPS: 1000, Burst: 1000, Timeout: 3 * time.Second, Dial: dial}
}
