package proxy

// Tests for what a client can make the upstream see beyond what was
// authorized (issue 15, items 1, 2, 3 and 7): protocol upgrades, identity
// headers removed through Connection, spellings of identity, method and URL
// headers, and rewrite values the review did not see.

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"

	"github.com/rbac-proxy/rbac-proxy/internal/testkit"
	"github.com/rbac-proxy/rbac-proxy/proxy/config"
	"github.com/rbac-proxy/rbac-proxy/proxy/internal/fakeapi"
)

// upstreamKinds are the upstream paths of newUpstreamTransport, all through
// http.Transport: plain http://, https://, --upstream-force-h2c (HTTP/2
// without TLS) and unix:// on a socket.
var upstreamKinds = []string{"http", "https", "h2c", "unix"}

// startRecorderUpstream serves rec as an upstream of the given kind and
// returns the proxy flags that reach it.
func startRecorderUpstream(t *testing.T, kind string, rec http.Handler) []string {
	t.Helper()
	switch kind {
	case "http":
		up := httptest.NewServer(rec)
		t.Cleanup(up.Close)
		return []string{"--upstream=" + up.URL + "/"}
	case "https":
		up := httptest.NewTLSServer(rec)
		t.Cleanup(up.Close)
		return []string{"--upstream=" + up.URL + "/", "--upstream-insecure-skip-verify"}
	case "h2c":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		us := &http.Server{Handler: rec, ReadHeaderTimeout: 5 * time.Second, Protocols: new(http.Protocols)}
		us.Protocols.SetUnencryptedHTTP2(true)
		go func() { _ = us.Serve(ln) }()
		t.Cleanup(func() { _ = us.Close() })
		return []string{"--upstream=http://" + ln.Addr().String() + "/", "--upstream-force-h2c"}
	case "unix":
		sock := filepath.Join(t.TempDir(), "up.sock")
		ln, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		us := &http.Server{Handler: rec, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = us.Serve(ln) }()
		t.Cleanup(func() { _ = us.Close() })
		return []string{"--upstream=unix://" + sock}
	}
	t.Fatalf("unknown upstream kind %q", kind)
	return nil
}

// protoClient is an HTTPS client of the proxy over HTTP/2 or HTTP/1.1 only.
func (e *testEnv) protoClient(h2 bool) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(e.ca.Cert)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: h2}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: tr}
}

// getProto is e.get that fails unless the request went over the protocol asked.
func (e *testEnv) getProto(t *testing.T, h2 bool, path string, header http.Header) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := e.protoClient(h2).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if (resp.ProtoMajor == 2) != h2 {
		t.Fatalf("went over %s", resp.Proto)
	}
	return resp.StatusCode
}

func protoName(h2 bool) string {
	if h2 {
		return "HTTP/2"
	}
	return "HTTP/1.1"
}

// lenientUpstream is an HTTP/1.1 upstream that accepts every upgrade, h2c
// included, with or without HTTP2-Settings, as a careless server would
// (x/net's h2c refuses one without a valid HTTP2-Settings). In the tunnel it
// "serves" every line it reads, as an HTTP/2 server would serve /debug.
type lenientUpstream struct {
	addr    string
	hits    atomic.Int64 // requests read
	tunnels atomic.Int64 // upgrades accepted

	mu   sync.Mutex
	last *http.Request
}

func newLenientUpstream(t *testing.T, tlsCert *tls.Certificate) *lenientUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if tlsCert != nil {
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{*tlsCert}})
	}
	u := &lenientUpstream{addr: ln.Addr().String()}
	var conns sync.WaitGroup
	var open sync.Map
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			open.Store(c, true)
			conns.Go(func() {
				defer open.Delete(c)
				u.serve(c)
			})
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		open.Range(func(c, _ any) bool { _ = c.(net.Conn).Close(); return true })
		conns.Wait()
	})
	return u
}

func (u *lenientUpstream) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		u.hits.Add(1)
		u.mu.Lock()
		u.last = req
		u.mu.Unlock()
		if up := req.Header.Get("Upgrade"); up != "" {
			u.tunnels.Add(1)
			fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: %s\r\n\r\ntunnel open\n", up)
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					return
				}
				fmt.Fprintf(c, "served %s", line)
			}
		}
		body := "plain " + req.URL.Path
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	}
}

// rawExchange sends head (a request without body, CRLF line ends added) to
// the proxy over HTTP/1.1 and reads the answer; after a 101 it sends a line
// into the tunnel and returns what came back.
func (e *testEnv) rawExchange(t *testing.T, head string) (status int, tunnel string) {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(e.ca.Cert)
	c, err := tls.Dial("tcp", e.srv.Addr("proxy"), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, strings.ReplaceAll(strings.TrimSpace(head), "\n", "\r\n")+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, ""
	}
	greeting, _ := br.ReadString('\n')
	if _, err := io.WriteString(c, "GET /debug\n"); err != nil {
		t.Fatal(err)
	}
	served, _ := br.ReadString('\n')
	return resp.StatusCode, greeting + served
}

func TestUpgradeSmuggling(t *testing.T) {
	api := fakeapi.New(t)
	api.AddToken("tok", authnv1.UserInfo{Username: "alice"})
	api.SetAllow(allowMetricsFor("alice"))

	const h2cHeaders = "Connection: Upgrade, HTTP2-Settings\nUpgrade: h2c\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA"
	const wsHeaders = "Connection: Upgrade\nUpgrade: websocket\nSec-WebSocket-Version: 13\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="
	const auth = "\nAuthorization: Bearer tok"
	tests := []struct {
		name     string
		flags    []string // besides the upstream
		path     string
		headers  string
		want     int
		contacts bool // the upstream sees the request
	}{
		{"h2c on an ignored path", []string{"--ignore-paths=/healthz"}, "/healthz", h2cHeaders, 400, false},
		{"h2c authorized", []string{"--ignore-paths=/healthz"}, "/metrics", h2cHeaders + auth, 400, false},
		{"h2c unauthenticated", nil, "/metrics", h2cHeaders, 400, false},
		{"h2c on a path --allow-paths refuses", []string{"--allow-paths=/metrics"}, "/debug", h2cHeaders + auth, 400, false},
		{"h2c with websocket allowed", []string{"--allowed-upgrades=websocket"}, "/metrics", h2cHeaders + auth, 400, false},
		{"h2c in capitals", []string{"--allowed-upgrades=websocket"}, "/metrics", "Connection: upgrade\nUpgrade: H2C" + auth, 400, false},
		{"h2c after websocket", []string{"--allowed-upgrades=websocket"}, "/metrics", "Connection: Upgrade\nUpgrade: websocket, h2c" + auth, 400, false},
		{"h2c in a second Upgrade line", []string{"--allowed-upgrades=websocket"}, "/metrics", "Connection: Upgrade\nUpgrade: websocket\nUpgrade: h2c" + auth, 400, false},
		{"HTTP/2.0", []string{"--allowed-upgrades=websocket"}, "/metrics", "Connection: Upgrade\nUpgrade: HTTP/2.0" + auth, 400, false},
		{"HTTP2-Settings alone", []string{"--ignore-paths=/healthz"}, "/healthz", "HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA", 400, false},
		{"HTTP2_Settings", []string{"--ignore-paths=/healthz"}, "/healthz", "Connection: Upgrade\nUpgrade: h2c\nHTTP2_Settings: AAMAAABkAAQCAAAAAAIAAAAA", 400, false},
		{"websocket by default", nil, "/metrics", wsHeaders + auth, 400, false},
		{"websocket by default on an ignored path", []string{"--ignore-paths=/healthz"}, "/healthz", wsHeaders, 400, false},
		{"Upgrade without Connection", nil, "/metrics", "Upgrade: websocket" + auth, 400, false},
		{"websocket allowed, authorized", []string{"--allowed-upgrades=websocket"}, "/metrics", wsHeaders + auth, 101, true},
		{"websocket allowed, in another case", []string{"--allowed-upgrades=websocket"}, "/metrics", "Connection: upgrade\nUpgrade: WebSocket" + auth, 101, true},
		{"websocket allowed, unauthenticated", []string{"--allowed-upgrades=websocket"}, "/metrics", wsHeaders, 401, false},
		{"websocket allowed, another protocol", []string{"--allowed-upgrades=websocket"}, "/metrics", "Connection: Upgrade\nUpgrade: foo" + auth, 400, false},
		{"websocket allowed, never on an ignored path", []string{"--allowed-upgrades=websocket", "--ignore-paths=/healthz"}, "/healthz", wsHeaders, 400, false},
		{"no upgrade: still served", []string{"--ignore-paths=/healthz"}, "/healthz", "Connection: keep-alive", 200, true},
	}
	e0 := newTestEnv(t)
	pair, err := e0.ca.Server("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	cert := pair.TLS()
	for _, kind := range []string{"http", "https"} { // http.Transport over HTTP/1, and over TLS
		t.Run(kind, func(t *testing.T) {
			var up *lenientUpstream
			var upFlags []string
			if kind == "https" {
				up = newLenientUpstream(t, &cert)
				upFlags = []string{"--upstream=https://" + up.addr + "/", "--upstream-insecure-skip-verify"}
			} else {
				up = newLenientUpstream(t, nil)
				upFlags = []string{"--upstream=http://" + up.addr + "/"}
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					e := newTestEnv(t)
					e.start(api, append(upFlags, tc.flags...)...)
					before, tunnelsBefore := up.hits.Load(), up.tunnels.Load()
					code, tunnel := e.rawExchange(t, "GET "+tc.path+" HTTP/1.1\nHost: 127.0.0.1\n"+tc.headers)
					if code != tc.want {
						t.Fatalf("got %d, want %d (tunnel %q)", code, tc.want, tunnel)
					}
					if contacted := up.hits.Load() != before; contacted != tc.contacts {
						t.Fatalf("upstream contacted: %v, want %v", contacted, tc.contacts)
					}
					if tc.want == 101 {
						if tunnel != "tunnel open\nserved GET /debug\n" {
							t.Fatalf("tunnel: %q", tunnel)
						}
						up.mu.Lock()
						got := up.last.Header.Get("Upgrade")
						up.mu.Unlock()
						if !strings.EqualFold(got, "websocket") {
							t.Fatalf("upstream asked for Upgrade %q", got)
						}
					} else if up.tunnels.Load() != tunnelsBefore {
						t.Fatal("the upstream opened a tunnel")
					}
				})
			}
		})
	}
}

// The proxy's identity headers reach the upstream, whatever the client's
// Connection header names (Connection exists only in HTTP/1).
func TestIdentityHeadersSurviveConnection(t *testing.T) {
	api := fakeapi.New(t)
	api.AddToken("tok", authnv1.UserInfo{Username: "alice", Groups: []string{"g1", "g2"}})
	api.SetAllow(allowMetricsFor("alice"))
	tests := []struct {
		name       string
		flags      []string
		connection string
		user, grp  string // header names the upstream should see
	}{
		{"default names", []string{"--auth-header-fields-enabled"}, "X-Remote-User, X-Remote-Groups", "X-Remote-User", "X-Remote-Groups"},
		{"default names, lower case", []string{"--auth-header-fields-enabled"}, "keep-alive, x-remote-user,x-remote-groups", "X-Remote-User", "X-Remote-Groups"},
		{"configured names", []string{"--auth-header-fields-enabled", "--auth-header-user-field-name=X-Auth-User", "--auth-header-groups-field-name=X-Auth-Groups"}, "X-Auth-User, X-Auth-Groups", "X-Auth-User", "X-Auth-Groups"},
	}
	for _, kind := range upstreamKinds {
		t.Run(kind, func(t *testing.T) {
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					rec := &recorder{}
					e := newTestEnv(t)
					e.start(api, append(startRecorderUpstream(t, kind, rec), tc.flags...)...)
					h := bearer("tok")
					h.Set("Connection", tc.connection)
					if code := e.getProto(t, false, "/metrics", h); code != 200 {
						t.Fatalf("got %d", code)
					}
					seen := rec.last(t).Header
					if got := seen.Values(tc.user); len(got) != 1 || got[0] != "alice" {
						t.Errorf("upstream saw %s=%q, want alice", tc.user, got)
					}
					if got := seen.Values(tc.grp); len(got) != 1 || got[0] != "g1|g2" {
						t.Errorf("upstream saw %s=%q, want g1|g2", tc.grp, got)
					}
				})
			}
		})
	}
}

// No spelling of an identity, method-override or URL-override header sent by
// the client reaches the upstream: over HTTP/1.1 and HTTP/2, on checked and
// ignored paths, through every upstream path.
func TestSpoofedHeadersNeverReachUpstream(t *testing.T) {
	api := fakeapi.New(t)
	api.AddToken("tok", authnv1.UserInfo{Username: "alice", Groups: []string{"g1"}})
	api.SetAllow(allowMetricsFor("alice"))
	const spoofed = "spoofed"
	for _, kind := range upstreamKinds {
		t.Run(kind, func(t *testing.T) {
			rec := &recorder{}
			e := newTestEnv(t)
			e.start(api, append(startRecorderUpstream(t, kind, rec), "--ignore-paths=/healthz",
				"--auth-header-fields-enabled", "--auth-header-user-field-name=X-Auth-User", "--auth-header-groups-field-name=X-Auth-Groups")...)
			for _, h2 := range []bool{false, true} {
				for _, path := range []string{"/metrics", "/healthz"} {
					t.Run(protoName(h2)+path, func(t *testing.T) {
						h := bearer("tok")
						for _, k := range spoofedHeaders {
							if k != "Authorization" {
								h[k] = []string{spoofed}
							}
						}
						for _, k := range keptHeaders[2:] {
							h[k] = []string{"kept"}
						}
						if code := e.getProto(t, h2, path, h); code != 200 {
							t.Fatalf("got %d", code)
						}
						seen := rec.last(t).Header
						for _, k := range spoofedHeaders {
							for got, values := range seen {
								if config.SameHeaderSpelling(got, config.HeaderSpelling(k)) {
									for _, v := range values {
										if v == spoofed || strings.Contains(v, "Bearer") {
											t.Errorf("%s reached the upstream as %s: %q", k, got, v)
										}
									}
								}
							}
						}
						if path == "/metrics" && (seen.Get("X-Auth-User") != "alice" || seen.Get("X-Auth-Groups") != "g1") {
							t.Errorf("identity headers: %v", seen)
						}
						for _, k := range keptHeaders[2:] { // not Accept and User-Agent, which clients set
							if seen.Get(k) != "kept" {
								t.Errorf("%s did not reach the upstream: %q", k, seen.Values(k))
							}
						}
					})
				}
			}
		})
	}
}

// Every value of a rewritten parameter that an upstream could read is
// reviewed, or the request is refused as ambiguous.
func TestRewriteParameterPollution(t *testing.T) {
	api := fakeapi.New(t)
	api.AddToken("tok", authnv1.UserInfo{Username: "alice"})
	api.SetAllow(func(s authzv1.SubjectAccessReviewSpec) bool {
		return s.ResourceAttributes != nil && s.ResourceAttributes.Namespace == "allowed"
	})
	const attrs = `
  resourceAttributes:
    namespace: "{{ .Value }}"
    resource: services
    subresource: proxy
    name: exporter
`
	byQuery := testkit.WriteFile(t, "query.yaml", "authorization:\n  rewrites:\n    byQueryParameter:\n      name: namespace"+attrs)
	byHeader := testkit.WriteFile(t, "header.yaml", "authorization:\n  rewrites:\n    byHttpHeader:\n      name: x-namespace"+attrs)
	tests := []struct {
		name   string
		config string
		method string
		query  string
		header http.Header
		want   int
	}{
		{"one allowed value", byQuery, "GET", "?namespace=allowed", nil, 200},
		{"one denied value", byQuery, "GET", "?namespace=secret", nil, 403},
		{"a denied repeat", byQuery, "GET", "?namespace=allowed&namespace=secret", nil, 403},
		{"an allowed repeat", byQuery, "GET", "?namespace=allowed&namespace=allowed", nil, 200},
		{"another case", byQuery, "GET", "?namespace=allowed&Namespace=secret", nil, 400},
		{"capitals", byQuery, "GET", "?namespace=allowed&NAMESPACE=secret", nil, 400},
		{"brackets", byQuery, "GET", "?namespace=allowed&namespace[]=secret", nil, 400},
		{"escaped brackets", byQuery, "GET", "?namespace=allowed&namespace%5B%5D=secret", nil, 400},
		{"indexed brackets", byQuery, "GET", "?namespace=allowed&namespace[0]=secret", nil, 400},
		{"escaped name", byQuery, "GET", "?namespace=allowed&%4eamespace=secret", nil, 400},
		{"underscore", byQuery, "GET", "?namespace=allowed&name_space=secret", nil, 400},
		{"dot", byQuery, "GET", "?namespace=allowed&name.space=secret", nil, 400},
		{"a semicolon", byQuery, "GET", "?namespace=allowed&x=1;namespace=secret", nil, 400},
		{"a bad escape", byQuery, "GET", "?namespace=allowed&namespace=%zz", nil, 400},
		{"only brackets", byQuery, "GET", "?namespace[]=secret", nil, 400},
		{"a form body", byQuery, "POST", "?namespace=allowed", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, 400},
		{"a multipart body", byQuery, "POST", "?namespace=allowed", http.Header{"Content-Type": {"Multipart/Form-Data; boundary=x"}}, 400},
		{"another parameter", byQuery, "GET", "?namespace=allowed&names=secret", nil, 200},
		{"no value", byQuery, "GET", "", nil, 400},
		{"header", byHeader, "GET", "", http.Header{"X-Namespace": {"allowed"}}, 200},
		{"header denied repeat", byHeader, "GET", "", http.Header{"X-Namespace": {"allowed", "secret"}}, 403},
		{"header with underscores", byHeader, "GET", "", http.Header{"X-Namespace": {"allowed"}, "X_Namespace": {"secret"}}, 400},
		{"header without the dash", byHeader, "GET", "", http.Header{"X-Namespace": {"allowed"}, "Xnamespace": {"secret"}}, 400},
		{"header twin only", byHeader, "GET", "", http.Header{"X_namespace": {"secret"}}, 400},
		// The ReverseProxy would drop a header the Connection header names, after its review.
		{"header dropped by Connection", byHeader, "GET", "", http.Header{"X-Namespace": {"allowed"}, "Connection": {"x-namespace"}}, 400},
		{"header dropped by Connection, among others", byHeader, "GET", "", http.Header{"X-Namespace": {"allowed"}, "Connection": {"keep-alive, X_Namespace"}}, 400},
		{"header: the query is not a rewrite source", byHeader, "GET", "?Namespace=x&namespace[]=y", http.Header{"X-Namespace": {"allowed"}}, 200},
	}
	envs := map[string]*testEnv{}
	for _, cfg := range []string{byQuery, byHeader} {
		e := newTestEnv(t)
		e.start(api, "--config-file="+cfg)
		envs[cfg] = e
	}
	for _, h2 := range []bool{false, true} {
		for _, tc := range tests {
			if _, hop := tc.header["Connection"]; hop && h2 {
				continue // HTTP/2 has no Connection header: the client and the server refuse one
			}
			t.Run(protoName(h2)+"/"+tc.name, func(t *testing.T) {
				e := envs[tc.config]
				req, err := http.NewRequest(tc.method, e.base+"/metrics"+tc.query, strings.NewReader(""))
				if err != nil {
					t.Fatal(err)
				}
				req.Header = bearer("tok")
				for k, v := range tc.header {
					req.Header[k] = v
				}
				before := e.upstream.hits.Load()
				resp, err := e.protoClient(h2).Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != tc.want {
					t.Fatalf("got %d, want %d", resp.StatusCode, tc.want)
				}
				if contacted := e.upstream.hits.Load() != before; contacted != (tc.want == 200) {
					t.Fatalf("upstream contacted: %v", contacted)
				}
			})
		}
	}
}
