package proxy

import (
	"bufio"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/rbac-proxy/rbac-proxy/proxy/internal/fakeapi"
)

// probeApp is an app behind the pass-through: it records every request it gets.
type probeApp struct {
	mu   sync.Mutex
	seen []*http.Request
}

func (a *probeApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.seen = append(a.seen, r.Clone(r.Context()))
	a.mu.Unlock()
	w.Header().Set("Set-Cookie", "session=secret")
	w.Header().Set("X-App-Secret", "s3cr3t")
	w.Header().Set("Location", "http://elsewhere/")
	w.Header().Set("Content-Type", "text/plain")
	if r.URL.Path == "/sick" {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_, _ = io.WriteString(w, "app:"+r.URL.RequestURI())
}

func (a *probeApp) requests() []*http.Request {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]*http.Request(nil), a.seen...)
}

func portOf(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Port()
}

// rawRequest sends one HTTP/1.1 request with the request target exactly as given.
func rawRequest(t *testing.T, addr, method, target string, header http.Header) (int, http.Header, string) {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // test
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var b strings.Builder
	b.WriteString(method + " " + target + " HTTP/1.1\r\nHost: " + addr + "\r\nConnection: close\r\n")
	for k, vs := range header {
		for _, v := range vs {
			b.WriteString(k + ": " + v + "\r\n")
		}
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body)
}

func TestProbePassthroughForwardsOnlyTheProbe(t *testing.T) {
	app, other := &probeApp{}, &probeApp{}
	appSrv, otherSrv := httptest.NewServer(app), httptest.NewServer(other)
	t.Cleanup(appSrv.Close)
	t.Cleanup(otherSrv.Close)
	appPort, otherPort := portOf(t, appSrv.URL), portOf(t, otherSrv.URL)

	e := newTestEnv(t)
	endpoints := e.startWithEndpointsPort(fakeapi.New(t),
		"--probe-passthrough=GET:"+appPort+":/health",
		"--probe-passthrough=GET:"+appPort+":/sick",
		"--probe-passthrough=HEAD:"+appPort+":/head-only",
		"--probe-passthrough=GET:"+appPort+":/ready?verbose=1")
	addr := "127.0.0.1:" + endpoints
	base := "/probe/" + appPort

	refused := []struct {
		method, target string
		status         int
	}{
		{"GET", base + "/health/", 404},
		{"GET", base + "/health/.", 404},
		{"GET", base + "/x/../health", 404},
		{"GET", base + "/./health", 404},
		{"GET", base + "//health", 404},
		{"GET", "/probe//" + appPort + "/health", 404},
		{"GET", base + "/%68ealth", 404},
		{"GET", "/probe/%39" + appPort[1:] + "/health", 404},
		{"GET", base + "/health%2f..%2fsecret", 404},
		{"GET", base + "/health/../secret", 404},
		{"GET", base + "/../../secret", 404},
		{"GET", base + "/health?x=1", 404},
		{"GET", base + "/health?", 404},
		{"GET", base + "/ready", 404},
		{"GET", base + "/ready?verbose=2", 404},
		{"GET", base + "/ready?verbose=1&x=1", 404},
		{"GET", base + "/Health", 404},
		{"GET", base + "/healthz", 404},
		{"GET", base + "/secret", 404},
		{"GET", base, 404},
		{"GET", base + "/", 404},
		{"GET", "/probe/" + otherPort + "/health", 404},
		{"GET", "/probe/0" + appPort + "/health", 404},
		{"GET", "/health", 404},
		{"GET", "/secret", 404},
		{"GET", "http://127.0.0.1:" + appPort + base + "/health", 404},
		{"POST", base + "/health", 405},
		{"PUT", base + "/health", 405},
		{"DELETE", base + "/health", 405},
		{"OPTIONS", base + "/health", 405},
		{"PATCH", base + "/health", 405},
		{"HEAD", base + "/health", 405},
		{"GET", base + "/head-only", 405},
	}
	for _, tc := range refused {
		status, _, _ := rawRequest(t, addr, tc.method, tc.target, nil)
		if status != tc.status {
			t.Errorf("%s %s: status %d, want %d", tc.method, tc.target, status, tc.status)
		}
	}
	if n := len(app.requests()) + len(other.requests()); n != 0 {
		for _, r := range append(app.requests(), other.requests()...) {
			t.Errorf("forwarded: %s %s", r.Method, r.URL.RequestURI())
		}
		t.Fatalf("%d refused requests reached an app", n)
	}

	// The proxy's own endpoints are still there.
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		if status, _, _ := rawRequest(t, addr, "GET", p, nil); status != 200 {
			t.Errorf("GET %s: %d", p, status)
		}
	}

	// The probe itself: no credentials needed, none forwarded, only the status, type and body back.
	status, header, body := rawRequest(t, addr, "GET", base+"/health", http.Header{
		"Authorization":   {"Bearer stolen"},
		"Cookie":          {"a=b"},
		"X-Forwarded-For": {"10.0.0.1"},
		"X-Remote-User":   {"admin"},
		"User-Agent":      {"kube-probe/1.35"},
		"Accept":          {"*/*"},
	})
	if status != 200 || body != "app:/health" {
		t.Fatalf("probe: %d %q", status, body)
	}
	for _, h := range []string{"Set-Cookie", "X-App-Secret", "Location"} {
		if header.Get(h) != "" {
			t.Errorf("the app's %s header came back: %q", h, header.Get(h))
		}
	}
	if header.Get("Content-Type") != "text/plain" {
		t.Errorf("Content-Type %q", header.Get("Content-Type"))
	}
	seen := app.requests()
	if len(seen) != 1 {
		t.Fatalf("the app saw %d requests, want 1", len(seen))
	}
	r := seen[0]
	if r.Method != "GET" || r.URL.RequestURI() != "/health" || r.Host != "127.0.0.1:"+appPort {
		t.Errorf("the app saw %s %s (Host %s)", r.Method, r.URL.RequestURI(), r.Host)
	}
	for k := range r.Header {
		switch k {
		case "User-Agent", "Accept", "Accept-Encoding":
		default:
			t.Errorf("header %s reached the app: %q", k, r.Header.Get(k))
		}
	}
	if r.Header.Get("User-Agent") != "kube-probe/1.35" {
		t.Errorf("User-Agent %q", r.Header.Get("User-Agent"))
	}

	// The app's failure is the probe's failure; the exact query; HEAD.
	if status, _, body := rawRequest(t, addr, "GET", base+"/sick", nil); status != 503 || body != "app:/sick" {
		t.Errorf("sick: %d %q", status, body)
	}
	if status, _, body := rawRequest(t, addr, "GET", base+"/ready?verbose=1", nil); status != 200 || body != "app:/ready?verbose=1" {
		t.Errorf("ready: %d %q", status, body)
	}
	if status, _, _ := rawRequest(t, addr, "HEAD", base+"/head-only", nil); status != 200 {
		t.Errorf("HEAD: %d", status)
	}
	if n := len(other.requests()); n != 0 {
		t.Errorf("the other app saw %d requests", n)
	}

	// The proxy port itself does not serve the pass-through: it needs credentials there.
	if status, _ := e.get(e.client(), base+"/health", nil); status != http.StatusUnauthorized {
		t.Errorf("pass-through path on the proxy port: %d, want 401", status)
	}
}

func TestProbePassthroughHTTPSAndDown(t *testing.T) {
	app := &probeApp{}
	appSrv := httptest.NewTLSServer(app)
	t.Cleanup(appSrv.Close)
	appPort := portOf(t, appSrv.URL)
	down := freePort(t)
	e := newTestEnv(t)
	endpoints := e.startWithEndpointsPort(fakeapi.New(t),
		"--probe-passthrough=https:GET:"+appPort+":/health", "--probe-passthrough=GET:"+down+":/health")
	addr := "127.0.0.1:" + endpoints
	if status, _, body := rawRequest(t, addr, "GET", "/probe/"+appPort+"/health", nil); status != 200 || body != "app:/health" {
		t.Errorf("https app: %d %q", status, body)
	}
	if status, _, _ := rawRequest(t, addr, "GET", "/probe/"+down+"/health", nil); status != http.StatusBadGateway {
		t.Errorf("down app: %d, want 502", status)
	}
}
