package proxy

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
	"github.com/rbac-proxy/rbac-proxy/proxy/internal/fakeapi"
)

// capturedLog is a logger that keeps every line, net/http's own error log
// (verbosity 1) included, so that a test can tell a recovered panic from a
// quiet abort.
type capturedLog struct {
	mu    sync.Mutex
	lines []string
}

func (c *capturedLog) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.lines = append(c.lines, prefix+" "+args)
	}, funcr.Options{Verbosity: 1})
}

func (c *capturedLog) grep(s string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, l := range c.lines {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

// endlessUpstream streams a body of unknown length in small flushed writes
// until its client goes away, as an exporter with a large exposition, a
// log stream or a download does. The Content-Type comes from ?type=.
func endlessUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	chunk := []byte(strings.Repeat("DCGM_FI_DEV_GPU_TEMP{gpu=\"0\"} 41\n", 64)) // 2 KiB
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/small" {
			_, _ = io.WriteString(w, "small")
			return
		}
		w.Header().Set("Content-Type", r.URL.Query().Get("type"))
		for sent := 0; sent < 64<<20 && r.Context().Err() == nil; sent += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	}))
	t.Cleanup(up.Close)
	return up
}

// TestClientsLeavingMidResponseDoNotKillTheProxy is issue 15's item 0: a
// client that reads a little of a streamed response and closes made the
// ReverseProxy abort its copy with http.ErrAbortHandler, the delayed flush
// then ran on a finished ResponseWriter from a timer goroutine, and the
// nil dereference there ended the process. Each kind of streamed body, on
// a guarded and an ignored path, over HTTP/1.1 and HTTP/2, is abandoned
// many times in this one process; the proxy must still answer afterwards,
// and no panic may have reached net/http's recovery either.
func TestClientsLeavingMidResponseDoNotKillTheProxy(t *testing.T) {
	up := endlessUpstream(t)
	api := fakeapi.New(t)
	api.AddToken("tok", authnv1.UserInfo{Username: "alice"})
	api.SetAllow(func(authzv1.SubjectAccessReviewSpec) bool { return true })
	logs := &capturedLog{}
	e := newTestEnv(t)
	f := config.NewFlags("rbac-proxy")
	if err := f.Parse(append([]string{"--secure-listen-address=127.0.0.1:0", "--upstream=" + up.URL + "/", "--ignore-paths=/healthz"}, e.servingFlags()...)); err != nil {
		t.Fatal(err)
	}
	cfg, err := f.Config()
	if err != nil {
		t.Fatal(err)
	}
	e.startConfig(cfg, Options{Logger: logs.logger(), Clients: clientsOf(t, api)})

	for _, tc := range []struct{ name, path, contentType, token string }{
		{"octet stream", "/download", "application/octet-stream", "tok"},
		{"exposition over the prefetch limit", "/metrics", "text/plain; version=0.0.4", "tok"},
		{"ignored path, no credentials", "/healthz", "text/plain", ""},
	} {
		for _, proto := range []string{"HTTP/1.1", "HTTP/2"} {
			t.Run(tc.name+" "+proto, func(t *testing.T) {
				var wg sync.WaitGroup
				for i := 0; i < 8; i++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for j := 0; j < 5; j++ {
							readALittleAndLeave(t, e, proto, tc.path+"?type="+url.QueryEscape(tc.contentType), tc.token, 1+(i*5+j)%3)
						}
					}()
				}
				wg.Wait()
				// Let any timer left behind by the aborted handlers fire.
				time.Sleep(50 * time.Millisecond)
				if code, body := e.get(e.client(), "/small", bearer("tok")); code != http.StatusOK || body != "small" {
					t.Fatalf("after the aborted streams: %d %q, want 200 small", code, body)
				}
			})
		}
	}
	if p := logs.grep("panic"); len(p) > 0 {
		t.Errorf("a panic reached net/http's recovery: %s", p[0])
	}
}

// readALittleAndLeave starts a streamed response, reads kib KiB of its
// body and goes away: HTTP/1.1 closes the connection, HTTP/2 resets the
// stream.
func readALittleAndLeave(t *testing.T, e *testEnv, proto, path, token string, kib int) {
	c := e.client()
	defer c.CloseIdleConnections()
	if proto == "HTTP/1.1" {
		c.Transport.(*http.Transport).TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.base+path, nil)
	if err != nil {
		t.Error(err)
		return
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Errorf("GET %s: %v", path, err)
		return
	}
	if resp.StatusCode != http.StatusOK || resp.Proto != strings.Replace(proto, "HTTP/2", "HTTP/2.0", 1) {
		t.Errorf("GET %s: %d over %s, want 200 over %s", path, resp.StatusCode, resp.Proto, proto)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, kib<<10)); err != nil {
		t.Errorf("GET %s: reading the first %d KiB: %v", path, kib, err)
	}
	cancel() // the client goes away without reading the rest
	_ = resp.Body.Close()
}

// TestPanicsInTheRequestPathLeaveTheProxyServing: whatever panics on a
// request's way (the ReverseProxy's http.ErrAbortHandler, or a bug), that
// request's connection is closed, its response is not passed off as whole,
// it is counted, and the proxy goes on serving; a corked answer is dropped,
// not sent half.
func TestPanicsInTheRequestPathLeaveTheProxyServing(t *testing.T) {
	api := fakeapi.New(t)
	api.AddToken("tok", authnv1.UserInfo{Username: "alice"})
	api.SetAllow(func(authzv1.SubjectAccessReviewSpec) bool { return true })
	logs := &capturedLog{}
	e := newTestEnv(t)
	f := config.NewFlags("rbac-proxy")
	if err := f.Parse(append([]string{"--secure-listen-address=127.0.0.1:0", "--upstream=http://127.0.0.1:1/"}, e.servingFlags()...)); err != nil {
		t.Fatal(err)
	}
	cfg, err := f.Config()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(cfg, Options{Logger: logs.logger(), Clients: clientsOf(t, api)})
	if err != nil {
		t.Fatal(err)
	}
	// In place of the ReverseProxy: an upstream side that panics by path.
	srv.handler.(*proxyHandler).upstream.(*upstreamHandler).proxy = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/abort-midway":
			w.Header().Set("Content-Length", "100")
			_, _ = io.WriteString(w, "part of it")
			_ = http.NewResponseController(w).Flush()
			panic(http.ErrAbortHandler)
		case "/bug-before-answering":
			panic("a bug")
		case "/bug-while-corked":
			r.Context().Value(exchangeKey{}).(*exchange).gather()
			w.Header().Set("Content-Length", "100")
			_, _ = io.WriteString(w, "part of it")
			_ = http.NewResponseController(w).Flush()
			panic("a bug")
		default:
			_, _ = io.WriteString(w, "ok")
		}
	})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	e.srv, e.base = srv, "https://"+srv.Addr("proxy")

	for _, path := range []string{"/abort-midway", "/bug-before-answering", "/bug-while-corked"} {
		for _, proto := range []string{"HTTP/1.1", "HTTP/2"} {
			t.Run(path+" "+proto, func(t *testing.T) {
				c := e.client()
				if proto == "HTTP/1.1" {
					c.Transport.(*http.Transport).TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
				}
				resp, err := c.Do(mustRequest(t, e.base+path, "tok"))
				if err == nil {
					body, readErr := io.ReadAll(resp.Body)
					resp.Body.Close()
					if readErr == nil {
						t.Fatalf("got %d %q as a whole response", resp.StatusCode, body)
					}
				}
				if code, body := e.get(e.client(), "/next", bearer("tok")); code != http.StatusOK || body != "ok" {
					t.Fatalf("the next request: %d %q, want 200 ok", code, body)
				}
			})
		}
	}
	if n := len(logs.grep("request panicked")); n != 4 {
		t.Errorf("%d panics logged, want the 4 bugs (an abort is not one)", n)
	}
}
