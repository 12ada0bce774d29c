package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"

	"github.com/rbac-proxy/rbac-proxy/internal/testkit"
	"github.com/rbac-proxy/rbac-proxy/internal/testpki"
	"github.com/rbac-proxy/rbac-proxy/proxy/config"
	"github.com/rbac-proxy/rbac-proxy/proxy/internal/fakeapi"
	"github.com/rbac-proxy/rbac-proxy/proxy/review"
)

func allowMetricsFor(name string) func(authzv1.SubjectAccessReviewSpec) bool {
	return func(s authzv1.SubjectAccessReviewSpec) bool {
		return s.User == name && s.NonResourceAttributes != nil && s.NonResourceAttributes.Path == "/metrics" && s.NonResourceAttributes.Verb == "get"
	}
}

func TestAuthenticationAndAuthorization(t *testing.T) {
	api := fakeapi.New(t)
	api.AddToken("alice-token", authnv1.UserInfo{Username: "alice"})
	api.AddToken("bob-token", authnv1.UserInfo{Username: "bob"})
	api.SetAllow(allowMetricsFor("alice"))
	e := newTestEnv(t)
	e.start(api)
	c := e.client()

	tests := []struct {
		name   string
		header http.Header
		want   int
	}{
		{"no credentials", nil, http.StatusUnauthorized},
		{"bad token", bearer("nope"), http.StatusUnauthorized},
		{"basic auth", http.Header{"Authorization": {"Basic YTpi"}}, http.StatusUnauthorized},
		{"empty bearer", http.Header{"Authorization": {"Bearer "}}, http.StatusUnauthorized},
		{"no RBAC", bearer("bob-token"), http.StatusForbidden},
		{"RBAC", bearer("alice-token"), http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.upstream.hits.Load()
			code, _ := e.get(c, "/metrics", tc.header)
			if code != tc.want {
				t.Fatalf("got %d, want %d", code, tc.want)
			}
			contacted := e.upstream.hits.Load() != before
			if contacted != (tc.want == http.StatusOK) {
				t.Fatalf("upstream contacted=%v for %d", contacted, code)
			}
		})
	}
	if got := e.upstream.last(t).Header.Get("Authorization"); got != "" {
		t.Fatalf("upstream saw Authorization %q", got)
	}
}

func TestPathsCannotEscapeAllowList(t *testing.T) {
	api := fakeapi.New(t)
	api.AddToken("tok", authnv1.UserInfo{Username: "alice"})
	api.SetAllow(func(authzv1.SubjectAccessReviewSpec) bool { return true }) // RBAC allows everything: only the path policy protects /debug
	e := newTestEnv(t)
	e.start(api, "--allow-paths=/metrics,/api/v1/*")
	c := e.client()
	tests := []struct {
		raw      string
		want     int
		upstream string // path the upstream must see
	}{
		{"/metrics", 200, "/metrics"},
		{"/metrics/../debug", 404, ""},
		{"/metrics/%2e%2e/debug", 404, ""},
		{"/metrics/%2E%2E/debug", 404, ""},
		{"//debug", 404, ""},
		{"/api/v1/../../debug", 404, ""},
		{"/api/v1/%2e%2e/%2e%2e/debug", 404, ""},
		{"/api/v1/x%2f..%2f..%2fdebug", 404, ""},
		{"/metrics%5c..%5cdebug", 400, ""},
		{"/debug/../metrics", 200, "/metrics"},
		{"//metrics", 200, "/metrics"},
		{"/api/v1/./x", 200, "/api/v1/x"},
		{"/api/v1/%2e/x", 200, "/api/v1/x"},
	}
	for _, tc := range tests {
		t.Run(tc.raw, func(t *testing.T) {
			before := e.upstream.hits.Load()
			code, _ := e.get(c, tc.raw, bearer("tok"))
			if code != tc.want {
				t.Fatalf("got %d, want %d", code, tc.want)
			}
			if tc.upstream == "" {
				if e.upstream.hits.Load() != before {
					t.Fatalf("upstream contacted for %s", tc.raw)
				}
				return
			}
			seen := e.upstream.last(t)
			if seen.Path != tc.upstream || seen.RawPath != "" {
				t.Fatalf("upstream saw path %q (raw %q), want %q", seen.Path, seen.RawPath, tc.upstream)
			}
			if got := api.LastSAR.Load().NonResourceAttributes.Path; got != tc.upstream {
				t.Fatalf("SAR checked %q, upstream got %q", got, tc.upstream)
			}
		})
	}
}

func TestIgnorePathsAndHeaders(t *testing.T) {
	api := fakeapi.New(t)
	api.AddToken("tok", authnv1.UserInfo{Username: "alice", Groups: []string{"g1", "g2"}})
	api.SetAllow(allowMetricsFor("alice"))
	spoof := http.Header{"X-Remote-User": {"admin"}, "X-Remote-Groups": {"system:masters"}, "X-Remote-Extra-Foo": {"bar"}}

	t.Run("ignored path skips auth and still strips", func(t *testing.T) {
		e := newTestEnv(t)
		e.start(api, "--ignore-paths=/healthz")
		h := spoof.Clone()
		h.Set("Authorization", "Bearer tok")
		code, _ := e.get(e.client(), "/healthz", h)
		if code != 200 {
			t.Fatalf("ignored path: %d", code)
		}
		seen := e.upstream.last(t).Header
		for _, k := range []string{"Authorization", "X-Remote-User", "X-Remote-Groups", "X-Remote-Extra-Foo"} {
			if v := seen.Get(k); v != "" {
				t.Errorf("upstream saw %s=%q", k, v)
			}
		}
		if code, _ := e.get(e.client(), "/metrics", nil); code != 401 {
			t.Fatalf("non-ignored path without credentials: %d", code)
		}
	})
	t.Run("identity headers disabled", func(t *testing.T) {
		e := newTestEnv(t)
		e.start(api)
		h := spoof.Clone()
		h.Set("Authorization", "Bearer tok")
		if code, _ := e.get(e.client(), "/metrics", h); code != 200 {
			t.Fatalf("got %d", code)
		}
		seen := e.upstream.last(t).Header
		for _, k := range []string{"Authorization", "X-Remote-User", "X-Remote-Groups", "X-Remote-Extra-Foo"} {
			if v := seen.Get(k); v != "" {
				t.Errorf("upstream saw %s=%q", k, v)
			}
		}
	})
	t.Run("identity headers enabled with custom names", func(t *testing.T) {
		e := newTestEnv(t)
		e.start(api, "--auth-header-fields-enabled", "--auth-header-user-field-name=X-User", "--auth-header-groups-field-name=X-Groups", "--auth-header-groups-field-separator=,")
		h := spoof.Clone()
		h.Set("Authorization", "Bearer tok")
		h.Set("X-User", "admin")
		if code, _ := e.get(e.client(), "/metrics", h); code != 200 {
			t.Fatalf("got %d", code)
		}
		seen := e.upstream.last(t).Header
		if seen.Get("X-User") != "alice" || seen.Get("X-Groups") != "g1,g2" {
			t.Errorf("upstream saw X-User=%q X-Groups=%q", seen.Get("X-User"), seen.Get("X-Groups"))
		}
		if len(seen.Values("X-User")) != 1 {
			t.Errorf("X-User has several values: %q", seen.Values("X-User"))
		}
		if seen.Get("X-Remote-User") != "" || seen.Get("Authorization") != "" {
			t.Errorf("spoofed headers reached the upstream: %v", seen)
		}
	})
	t.Run("a group holding the separator is refused, not split", func(t *testing.T) {
		api.AddToken("split", authnv1.UserInfo{Username: "alice", Groups: []string{"dev,admins"}})
		e := newTestEnv(t)
		e.start(api, "--auth-header-fields-enabled", "--auth-header-groups-field-name=X-Groups", "--auth-header-groups-field-separator=,")
		h := http.Header{"Authorization": {"Bearer split"}}
		if code, _ := e.get(e.client(), "/metrics", h); code != 401 {
			t.Fatalf("got %d, want 401: the upstream would read groups dev and admins", code)
		}
	})
}

func TestClientCertificates(t *testing.T) {
	api := fakeapi.New(t)
	api.SetAllow(func(s authzv1.SubjectAccessReviewSpec) bool {
		return s.User == "scraper" && len(s.Groups) == 1 && s.Groups[0] == "monitoring"
	})
	e := newTestEnv(t)
	e.start(api, e.clientCAFlag())
	scraper, _ := e.ca.Client("scraper", "monitoring")
	other, _ := e.ca.Client("other")
	rogueCA, _ := testNewCA()
	rogue, _ := rogueCA.Client("scraper", "monitoring")

	if code, _ := e.get(e.client(scraper.TLS()), "/metrics", nil); code != 200 {
		t.Fatalf("trusted certificate with RBAC: %d", code)
	}
	if code, _ := e.get(e.client(other.TLS()), "/metrics", nil); code != 403 {
		t.Fatalf("trusted certificate without RBAC: %d", code)
	}
	if code, _ := e.get(e.client(rogue.TLS()), "/metrics", nil); code != 401 {
		t.Fatalf("untrusted certificate: %d", code)
	}
	if n := api.TokenReviews.Load(); n != 0 {
		t.Fatalf("%d TokenReviews for certificate requests", n)
	}
}

func TestStaticMTLSWithoutAPIServer(t *testing.T) {
	// No Clients, no kubeconfig, not in a cluster: no client is built at all.
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	e := newTestEnv(t)
	e.start(nil, e.clientCAFlag(), "--authz=static", "--allowed-users=scraper", "--allowed-groups=ops")
	scraper, _ := e.ca.Client("scraper")
	opsPerson, _ := e.ca.Client("someone", "ops")
	other, _ := e.ca.Client("other")
	for _, tc := range []struct {
		name   string
		c      *http.Client
		header http.Header
		want   int
	}{
		{"allowed user", e.client(scraper.TLS()), nil, 200},
		{"allowed group", e.client(opsPerson.TLS()), nil, 200},
		{"other user", e.client(other.TLS()), nil, 403},
		{"token refused", e.client(), bearer("x"), 401},
		{"nothing", e.client(), nil, 401},
	} {
		if code, _ := e.get(tc.c, "/metrics", tc.header); code != tc.want {
			t.Errorf("%s: got %d, want %d", tc.name, code, tc.want)
		}
	}
}

func TestResourceAttributesAndRewrites(t *testing.T) {
	api := fakeapi.New(t)
	api.AddToken("tok", authnv1.UserInfo{Username: "alice"})
	api.SetAllow(func(s authzv1.SubjectAccessReviewSpec) bool {
		ra := s.ResourceAttributes
		return ra != nil && ra.Namespace == "gpu" && ra.Resource == "services" && ra.Subresource == "proxy" && ra.Name == "dcgm-exporter" && ra.Verb == "get"
	})
	t.Run("flag", func(t *testing.T) {
		e := newTestEnv(t)
		e.start(api, "--resource-attributes=namespace=gpu,resource=services,subresource=proxy,name=dcgm-exporter")
		if code, _ := e.get(e.client(), "/metrics", bearer("tok")); code != 200 {
			t.Fatalf("got %d", code)
		}
	})
	t.Run("rewrite", func(t *testing.T) {
		cfg := testkit.WriteFile(t, "cfg.yaml", `
authorization:
  rewrites:
    byQueryParameter:
      name: namespace
  resourceAttributes:
    namespace: "{{ .Value }}"
    resource: services
    subresource: proxy
    name: dcgm-exporter
`)
		e := newTestEnv(t)
		e.start(api, "--config-file="+cfg)
		c := e.client()
		for _, tc := range []struct {
			q    string
			want int
		}{
			{"?namespace=gpu", 200},
			{"?namespace=kube-system", 403},
			{"?namespace=gpu&namespace=kube-system", 403},
			{"", 400},
		} {
			if code, _ := e.get(c, "/metrics"+tc.q, bearer("tok")); code != tc.want {
				t.Errorf("%q: got %d, want %d", tc.q, code, tc.want)
			}
		}
	})
}

func TestUpstreamKinds(t *testing.T) {
	api := fakeapi.New(t)
	api.AddToken("tok", authnv1.UserInfo{Username: "alice"})
	api.SetAllow(allowMetricsFor("alice"))

	t.Run("unix socket", func(t *testing.T) {
		sock := filepath.Join(t.TempDir(), "up.sock")
		ln, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		rec := &recorder{}
		us := &http.Server{Handler: rec, ReadHeaderTimeout: time.Second}
		go func() { _ = us.Serve(ln) }()
		t.Cleanup(func() { _ = us.Close() })
		e := newTestEnv(t)
		e.start(api, "--upstream=unix://"+sock)
		code, body := e.get(e.client(), "/metrics", bearer("tok"))
		if code != 200 || body != "upstream:/metrics" || rec.hits.Load() != 1 {
			t.Fatalf("got %d %q, hits %d", code, body, rec.hits.Load())
		}
	})
	t.Run("h2c", func(t *testing.T) {
		rec := &recorder{}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		us := &http.Server{Handler: rec, ReadHeaderTimeout: time.Second, Protocols: new(http.Protocols)}
		us.Protocols.SetUnencryptedHTTP2(true) // h2c only: HTTP/1.1 is refused
		go func() { _ = us.Serve(ln) }()
		t.Cleanup(func() { _ = us.Close() })
		e := newTestEnv(t)
		e.start(api, "--upstream=http://"+ln.Addr().String()+"/", "--upstream-force-h2c")
		code, _ := e.get(e.client(), "/metrics", bearer("tok"))
		if code != 200 || rec.last(t).Proto != "HTTP/2.0" {
			t.Fatalf("got %d, upstream saw %s", code, rec.last(t).Proto)
		}
	})
}

func TestHTTP2Client(t *testing.T) {
	api := fakeapi.New(t)
	api.AddToken("tok", authnv1.UserInfo{Username: "alice"})
	api.SetAllow(allowMetricsFor("alice"))
	e := newTestEnv(t)
	e.start(api)
	resp, err := e.client().Do(mustRequest(t, e.base+"/metrics", "tok"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("got %d over %s, want 200 over HTTP/2", resp.StatusCode, resp.Proto)
	}

	e2 := newTestEnv(t)
	e2.start(api, "--http2-disable")
	resp, err = e2.client().Do(mustRequest(t, e2.base+"/metrics", "tok"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 1 {
		t.Fatalf("--http2-disable served %s", resp.Proto)
	}
}

func mustRequest(t *testing.T, u, token string) *http.Request {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

func TestStreamingResponse(t *testing.T) {
	api := fakeapi.New(t)
	api.AddToken("tok", authnv1.UserInfo{Username: "alice"})
	api.SetAllow(allowMetricsFor("alice"))
	release := make(chan struct{})
	up := &http.Server{ReadHeaderTimeout: time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "first-chunk\n")
		w.(http.Flusher).Flush()
		<-release // the rest only comes once the client has seen the first part
		_, _ = io.WriteString(w, "second-chunk\n")
	})}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go func() { _ = up.Serve(ln) }()
	t.Cleanup(func() { _ = up.Close() })
	e := newTestEnv(t)
	e.start(api, "--upstream=http://"+ln.Addr().String())
	resp, err := e.client().Do(mustRequest(t, e.base+"/metrics", "tok"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	got := make(chan string, 1)
	go func() { line, _ := br.ReadString('\n'); got <- line }()
	select {
	case line := <-got:
		if line != "first-chunk\n" {
			t.Fatalf("first line %q", line)
		}
	case <-time.After(3 * time.Second):
		close(release)
		t.Fatal("the first chunk was held back until the response ended: not streamed")
	}
	close(release)
	rest, _ := io.ReadAll(br)
	if string(rest) != "second-chunk\n" {
		t.Fatalf("rest %q", rest)
	}
}

func TestServerHardening(t *testing.T) {
	api := fakeapi.New(t)
	e := newTestEnv(t)
	e.start(api, "--read-header-timeout=300ms", "--max-header-bytes=8192", "--http2-disable")

	t.Run("oversized headers get 431", func(t *testing.T) {
		h := http.Header{"X-Big": {strings.Repeat("a", 20000)}}
		if code, _ := e.get(e.client(), "/metrics", h); code != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("got %d", code)
		}
	})
	t.Run("slow client is cut off", func(t *testing.T) {
		conn, err := tls.Dial("tcp", strings.TrimPrefix(e.base, "https://"), &tls.Config{RootCAs: e.ca.Pool(), NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_, _ = io.WriteString(conn, "GET /metrics HTTP/1.1\r\nHost: x\r\n") // never finishes the headers
		start := time.Now()
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = io.ReadAll(conn)
		if el := time.Since(start); el > 3*time.Second {
			t.Fatalf("connection held %v (err %v), want closed after ~300ms", el, err)
		}
	})
}

func TestEndpointsAndMetrics(t *testing.T) {
	api := fakeapi.New(t)
	api.AddToken("tok", authnv1.UserInfo{Username: "alice"})
	api.SetAllow(allowMetricsFor("alice"))
	e := newTestEnv(t)
	port := e.startWithEndpointsPort(api)
	e.get(e.client(), "/metrics", bearer("tok"))
	e.get(e.client(), "/metrics", nil)
	base := "https://127.0.0.1:" + port
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := e.client().Get(base + p)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v %v", p, err, resp)
		}
		resp.Body.Close()
	}
	resp, err := e.client().Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`rbac_proxy_requests_total{code="200"} 1`,
		`rbac_proxy_requests_total{code="401"} 1`,
		`rbac_proxy_authentication_total{method="token",result="success"} 1`,
		`rbac_proxy_authentication_total{method="none",result="failure"} 1`,
		`rbac_proxy_authorization_total{result="allowed"} 1`,
		`rbac_proxy_review_cache_total{cache="tokenreview",result="miss"} 1`,
		`rbac_proxy_review_duration_seconds_count{result="ok",review="subjectaccessreview"} 1`,
		`rbac_proxy_upstream_duration_seconds_count{code="200"} 1`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func freePort(t testing.TB) string {
	port, err := testkit.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return strconv.Itoa(port)
}

func TestGracefulShutdownDrains(t *testing.T) {
	api := fakeapi.New(t)
	api.AddToken("tok", authnv1.UserInfo{Username: "alice"})
	api.SetAllow(allowMetricsFor("alice"))
	started := make(chan struct{})
	up := &http.Server{ReadHeaderTimeout: time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(time.Second)
		_, _ = io.WriteString(w, "done")
	})}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go func() { _ = up.Serve(ln) }()
	t.Cleanup(func() { _ = up.Close() })
	e := newTestEnv(t)
	e.start(api, "--upstream=http://"+ln.Addr().String())
	type result struct {
		code int
		body string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := e.client().Do(mustRequest(t, e.base+"/metrics", "tok"))
		if err != nil {
			res <- result{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- result{code: resp.StatusCode, body: string(b)}
	}()
	<-started
	e.cancel() // what SIGTERM does in main
	r := <-res
	if r.err != nil || r.code != 200 || r.body != "done" {
		t.Fatalf("in-flight request during shutdown: %+v", r)
	}
	if err := <-e.done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	e.done <- nil // for the cleanup
	if _, err := net.DialTimeout("tcp", strings.TrimPrefix(e.base, "https://"), time.Second); err == nil {
		t.Fatal("still accepting connections after shutdown")
	}
}

// TestAPIBlackHole: an API server that accepts connections and never answers
// must not hold requests longer than --kube-api-timeout; cached identities
// keep working, unknown ones are refused.
func TestAPIBlackHole(t *testing.T) {
	api := fakeapi.New(t)
	api.AddToken("known", authnv1.UserInfo{Username: "alice"})
	api.SetAllow(allowMetricsFor("alice"))
	hole := newBlackHole(t)

	// Clients whose address we can switch from the fake to the black hole.
	var target atomic.Value
	target.Store(api.URL())
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		u, _ := url.Parse(target.Load().(string))
		return (&net.Dialer{}).DialContext(ctx, network, u.Host)
	}
	rc := restConfigFor(api.URL(), dial)
	tokens, access := fakeapi.ClientsFor(t, rc)
	e := newTestEnv(t)
	f := config.NewFlags("rbac-proxy")
	up := newUpstreamServer(t, e.upstream)
	if err := f.Parse(append([]string{"--secure-listen-address=127.0.0.1:0", "--upstream=" + up, "--kube-api-timeout=1s"}, e.servingFlags()...)); err != nil {
		t.Fatal(err)
	}
	cfg, err := f.Config()
	if err != nil {
		t.Fatal(err)
	}
	e.startConfig(cfg, Options{Clients: &review.Clients{Tokens: tokens, Access: access}})
	c := e.client()
	if code, _ := e.get(c, "/metrics", bearer("known")); code != 200 {
		t.Fatalf("before the outage: %d", code)
	}
	target.Store("http://" + hole)
	api.CloseClientConnections() // pooled connections would still reach the fake
	for _, tc := range []struct {
		token string
		want  int
	}{{"known", 200}, {"unknown", 401}} {
		start := time.Now()
		code, _ := e.get(c, "/metrics", bearer(tc.token))
		if code != tc.want {
			t.Errorf("%s token during the outage: %d, want %d", tc.token, code, tc.want)
		}
		if el := time.Since(start); el > 3*time.Second {
			t.Errorf("%s token held %v", tc.token, el)
		}
	}
}

// newBlackHole accepts TCP connections and never answers.
func newBlackHole(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

func newUpstreamServer(t *testing.T, h http.Handler) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &http.Server{Handler: h, ReadHeaderTimeout: time.Second}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Close() })
	return "http://" + ln.Addr().String() + "/"
}

func TestCertificateRotationWithSymlinkSwap(t *testing.T) {
	api := fakeapi.New(t)
	api.AddToken("tok", authnv1.UserInfo{Username: "alice"})
	api.SetAllow(func(s authzv1.SubjectAccessReviewSpec) bool { return true })
	e := newTestEnv(t)

	// The kubelet's layout: dir/tls.crt → ..data/tls.crt, ..data → ..<timestamp>.
	serving1, _ := e.ca.Server("127.0.0.1")
	vol, err := testkit.NewProjection(filepath.Join(e.dir, "vol"), map[string][]byte{"tls.crt": serving1.CertPEM, "tls.key": serving1.KeyPEM, "ca.crt": e.ca.CertPEM})
	if err != nil {
		t.Fatal(err)
	}
	up := newUpstreamServer(t, e.upstream)
	f := config.NewFlags("rbac-proxy")
	if err := f.Parse([]string{"--secure-listen-address=127.0.0.1:0", "--upstream=" + up,
		"--tls-cert-file=" + vol.Path("tls.crt"), "--tls-private-key-file=" + vol.Path("tls.key"),
		"--client-ca-file=" + vol.Path("ca.crt")}); err != nil {
		t.Fatal(err)
	}
	cfg, err := f.Config()
	if err != nil {
		t.Fatal(err)
	}
	e.startConfig(cfg, Options{Clients: clientsOf(t, api)})

	// A new CA for the rotation; clients trust both while it happens.
	ca2, _ := testNewCA()
	serving2, _ := ca2.Server("127.0.0.1")
	client1, _ := e.ca.Client("scraper")
	client2, _ := ca2.Client("scraper")
	pool := e.ca.Pool()
	pool.AddCert(ca2.Cert)
	newClient := func(cert tls.Certificate) *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			DisableKeepAlives: true, // every request makes a new handshake
			TLSClientConfig:   &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}},
		}}
	}
	// Token requests run all along; none may fail.
	stop := make(chan struct{})
	var failures, total atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c := newClient(tls.Certificate{})
		for {
			select {
			case <-stop:
				return
			default:
			}
			total.Add(1)
			resp, err := c.Do(mustRequest(t, e.base+"/metrics", "tok"))
			if err != nil || resp.StatusCode != 200 {
				failures.Add(1)
			}
			if err == nil {
				resp.Body.Close()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()

	servedBy := func() string { return testpki.ServedBy(strings.TrimPrefix(e.base, "https://"), pool) }
	if got := servedBy(); got != "test-ca" {
		t.Fatalf("served by %q before rotation", got)
	}
	if code, _ := e.get(newClient(client1.TLS()), "/metrics", nil); code != 200 {
		t.Fatalf("old client certificate before rotation: %d", code)
	}
	if err := vol.Update(map[string][]byte{"tls.crt": serving2.CertPEM, "tls.key": serving2.KeyPEM, "ca.crt": ca2.CertPEM}); err != nil {
		t.Fatal(err)
	}
	rotated := time.Now()
	for servedBy() != "test-ca-2" {
		if time.Since(rotated) > 5*time.Second {
			t.Fatal("serving certificate not reloaded within 5s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	for {
		code, _ := e.get(newClient(client2.TLS()), "/metrics", nil)
		if code == 200 {
			break
		}
		if time.Since(rotated) > 5*time.Second {
			t.Fatal("client CA not reloaded within 5s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, _ := e.get(newClient(client1.TLS()), "/metrics", nil); code != 401 {
		t.Fatalf("certificate of the removed CA: %d, want 401", code)
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failures.Load() != 0 || total.Load() < 10 {
		t.Fatalf("%d of %d requests failed during the rotation", failures.Load(), total.Load())
	}
}

func TestInsecureListener(t *testing.T) {
	api := fakeapi.New(t)
	api.AddToken("tok", authnv1.UserInfo{Username: "alice"})
	api.SetAllow(allowMetricsFor("alice"))
	e := newTestEnv(t)
	f := config.NewFlags("rbac-proxy")
	if err := f.Parse([]string{"--insecure-listen-address=127.0.0.1:0", "--upstream=" + newUpstreamServer(t, e.upstream)}); err != nil {
		t.Fatal(err)
	}
	cfg, err := f.Config()
	if err != nil {
		t.Fatal(err)
	}
	e.startConfig(cfg, Options{Clients: clientsOf(t, api)})
	base := "http://" + e.srv.Addr("insecure")
	for _, tc := range []struct {
		token string
		want  int
	}{{"", 401}, {"tok", 200}} {
		resp, err := http.DefaultClient.Do(mustRequest(t, base+"/metrics", tc.token))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("token %q: %d, want %d", tc.token, resp.StatusCode, tc.want)
		}
	}
	// h2c prior knowledge works on the plain listener, as in kube-rbac-proxy.
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	resp, err := (&http.Client{Transport: tr}).Do(mustRequest(t, base+"/metrics", "tok"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("h2c: %d over %s", resp.StatusCode, resp.Proto)
	}
}

func TestHTTPSUpstreamWithReloadedClientCertificate(t *testing.T) {
	api := fakeapi.New(t)
	api.AddToken("tok", authnv1.UserInfo{Username: "alice"})
	api.SetAllow(allowMetricsFor("alice"))
	e := newTestEnv(t)

	// The upstream requires a client certificate from the test CA and answers with its CN.
	upCert, _ := e.ca.Server("127.0.0.1")
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "cn="+r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	up.TLS = &tls.Config{Certificates: []tls.Certificate{upCert.TLS()}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: e.ca.Pool()}
	up.StartTLS()
	t.Cleanup(up.Close)

	caFile := filepath.Join(e.dir, "upstream-ca.crt")
	if err := os.WriteFile(caFile, e.ca.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	first, _ := e.ca.Client("proxy-one")
	certFile, keyFile, err := first.Write(e.dir, "upstream-client")
	if err != nil {
		t.Fatal(err)
	}
	e.start(api, "--upstream="+up.URL+"/", "--upstream-ca-file="+caFile, "--upstream-client-cert-file="+certFile, "--upstream-client-key-file="+keyFile)
	c := e.client()
	if code, body := e.get(c, "/metrics", bearer("tok")); code != 200 || body != "cn=proxy-one" {
		t.Fatalf("got %d %q", code, body)
	}

	second, _ := e.ca.Client("proxy-two")
	tmp := t.TempDir()
	c2, k2, _ := second.Write(tmp, "next")
	if err := os.Rename(k2, keyFile); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(c2, certFile); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, body := e.get(c, "/metrics", bearer("tok"))
		if code != 200 {
			t.Fatalf("during rotation: %d %q", code, body)
		}
		if body == "cn=proxy-two" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("upstream client certificate not reloaded within 5s: %q", body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestHTTPSUpstreamVerification(t *testing.T) {
	api := fakeapi.New(t)
	api.AddToken("tok", authnv1.UserInfo{Username: "alice"})
	api.SetAllow(allowMetricsFor("alice"))
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "tls upstream") }))
	t.Cleanup(up.Close)
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"untrusted upstream certificate", nil, http.StatusBadGateway},
		{"--upstream-insecure-skip-verify on loopback", []string{"--upstream-insecure-skip-verify"}, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			e.start(api, append([]string{"--upstream=" + up.URL + "/"}, tc.args...)...)
			if code, body := e.get(e.client(), "/metrics", bearer("tok")); code != tc.want {
				t.Fatalf("got %d %q, want %d", code, body, tc.want)
			}
		})
	}
}

// TestHTTPSUpstreamCARotation: a new --upstream-ca-file is trusted within
// seconds, the old CA no longer is, and the upstream's host name is still
// checked against its certificate.
func TestHTTPSUpstreamCARotation(t *testing.T) {
	api := fakeapi.New(t)
	api.AddToken("tok", authnv1.UserInfo{Username: "alice"})
	api.SetAllow(allowMetricsFor("alice"))
	e := newTestEnv(t)

	oldCA, newCA := e.ca, mustCA(t, "upstream-ca-2")
	oldCert, _ := oldCA.Server("127.0.0.1")
	newCert, _ := newCA.Server("127.0.0.1")
	wrongName, _ := oldCA.Server("elsewhere.example")
	var serving atomic.Pointer[tls.Certificate]
	use := func(p testpki.Pair) { c := p.TLS(); serving.Store(&c) }
	use(oldCert)
	up := &http.Server{
		ReadHeaderTimeout: time.Second,
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }),
		TLSConfig:         &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return serving.Load(), nil }},
	}
	up.SetKeepAlivesEnabled(false) // every request a new handshake
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = up.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = up.Close() })

	caFile := filepath.Join(e.dir, "upstream-ca.crt")
	if err := os.WriteFile(caFile, oldCA.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	e.start(api, "--upstream=https://"+ln.Addr().String()+"/", "--upstream-ca-file="+caFile)
	c := e.client()
	get := func() int { code, _ := e.get(c, "/metrics", bearer("tok")); return code }
	if code := get(); code != http.StatusOK {
		t.Fatalf("upstream signed by the configured CA: %d", code)
	}
	use(wrongName)
	if code := get(); code != http.StatusBadGateway {
		t.Fatalf("upstream certificate for another host name: %d, want 502", code)
	}
	use(newCert)
	if code := get(); code != http.StatusBadGateway {
		t.Fatalf("upstream signed by a CA not yet configured: %d, want 502", code)
	}
	tmp := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(tmp, newCA.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, caFile); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for get() != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("the rotated --upstream-ca-file was not trusted within 5s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	use(oldCert)
	if code := get(); code != http.StatusBadGateway {
		t.Fatalf("upstream signed by the replaced CA: %d, want 502", code)
	}
}

func mustCA(t *testing.T, name string) *testpki.CA {
	t.Helper()
	ca, err := testpki.NewCA(name)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}
