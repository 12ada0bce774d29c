package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// scriptedUpstream accepts TCP connections and runs a script on each,
// numbered from 0. It counts the connections it accepted.
type scriptedUpstream struct {
	addr  string
	conns atomic.Int64
}

func newScriptedUpstream(t *testing.T, script func(n int64, c net.Conn, br *bufio.Reader)) *scriptedUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	u := &scriptedUpstream{addr: ln.Addr().String()}
	go func() {
		for n := int64(0); ; n++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.conns.Add(1)
			go func() {
				defer c.Close()
				script(n, c, bufio.NewReader(c))
			}()
		}
	}()
	return u
}

// newRawUpstream answers each request on a connection with the next of
// replies (raw HTTP/1.x bytes); after the last, or after one that ends
// with the connection, it closes the connection.
func newRawUpstream(t *testing.T, replies ...string) *scriptedUpstream {
	t.Helper()
	return newScriptedUpstream(t, func(_ int64, c net.Conn, br *bufio.Reader) {
		for _, reply := range replies {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			if _, err := io.WriteString(c, reply); err != nil {
				return
			}
			if strings.HasPrefix(reply, "HTTP/1.0") || strings.Contains(reply, "Connection: close") {
				return // the end of the body is the end of the connection
			}
		}
	})
}

// countingServer is an httptest server that counts new connections.
func countingServer(t *testing.T, h http.Handler) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	return countingServerOn(t, nil, h)
}

// countingServerOn is countingServer serving on ln, or on a loopback TCP
// port when ln is nil.
func countingServerOn(t *testing.T, ln net.Listener, h http.Handler) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	s := httptest.NewUnstartedServer(h)
	if ln != nil {
		_ = s.Listener.Close()
		s.Listener = ln
	}
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s, &conns
}

// recordingTransport is a fallback that records what it was given.
type recordingTransport struct{ got atomic.Int64 }

func (f *recordingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	f.got.Add(1)
	return &http.Response{StatusCode: 299, Body: http.NoBody, Header: http.Header{}}, nil
}

func newH1(addr string, fallback http.RoundTripper) *h1Transport {
	d := &net.Dialer{}
	return &h1Transport{
		dial:        func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) },
		fallback:    fallback,
		maxIdle:     8,
		idleTimeout: time.Minute,
	}
}

func get(t *testing.T, rt http.RoundTripper, ctx context.Context, method, url string) (*http.Response, string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

func TestH1TransportReusesConnections(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		method  string
		want    string
	}{
		{"content length", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }, http.MethodGet, "ok"},
		{"chunked", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, strings.Repeat("x", 5000))
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, "end")
		}, http.MethodGet, strings.Repeat("x", 5000) + "end"},
		{"no body", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }, http.MethodGet, ""},
		{"head", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ignored") }, http.MethodHead, ""},
		{"interim 103 first", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Link", "</style.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			_, _ = io.WriteString(w, "after hints")
		}, http.MethodGet, "after hints"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up, conns := countingServer(t, tc.handler)
			fallback := &recordingTransport{}
			rt := newH1(up.Listener.Addr().String(), fallback)
			for i := 0; i < 5; i++ {
				resp, body, err := get(t, rt, context.Background(), tc.method, up.URL+"/metrics")
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				if resp.StatusCode >= 300 || body != tc.want {
					t.Fatalf("request %d: status %d, body %q; want 2xx, %q", i, resp.StatusCode, body, tc.want)
				}
			}
			if n := conns.Load(); n != 1 {
				t.Errorf("5 sequential requests used %d connections, want 1", n)
			}
			if fallback.got.Load() != 0 {
				t.Error("a scrape-shaped request went to the fallback")
			}
		})
	}
}

func TestH1TransportHandsOtherRequestsToFallback(t *testing.T) {
	up, conns := countingServer(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for name, mk := range map[string]func() *http.Request{
		"post with a body": func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, up.URL, strings.NewReader("x"))
			return r
		},
		"put without a body": func() *http.Request { r, _ := http.NewRequest(http.MethodPut, up.URL, nil); return r },
		"upgrade": func() *http.Request {
			r, _ := http.NewRequest(http.MethodGet, up.URL, nil)
			r.Header.Set("Connection", "Upgrade")
			r.Header.Set("Upgrade", "websocket")
			return r
		},
		"a header value not valid on the wire": func() *http.Request {
			r, _ := http.NewRequest(http.MethodGet, up.URL, nil)
			r.Header.Set("X-Remote-User", "alice\x00admin")
			return r
		},
		"a header name not valid on the wire": func() *http.Request {
			r, _ := http.NewRequest(http.MethodGet, up.URL, nil)
			r.Header["X Remote User"] = []string{"alice"}
			return r
		},
		"https": func() *http.Request {
			r, _ := http.NewRequest(http.MethodGet, "https://example.invalid/", nil)
			return r
		},
	} {
		t.Run(name, func(t *testing.T) {
			fallback := &recordingTransport{}
			resp, err := newH1(up.Listener.Addr().String(), fallback).RoundTrip(mk())
			if err != nil || resp.StatusCode != 299 || fallback.got.Load() != 1 {
				t.Fatalf("got %v, %v; want the fallback's 299", resp, err)
			}
		})
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("the direct path connected %d times for requests it does not take", n)
	}
}

func TestH1TransportDoesNotReuseWhatItCannot(t *testing.T) {
	const ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	for _, tc := range []struct {
		name    string
		replies []string
		read    func(io.Reader) // how the caller consumes the first body
	}{
		{"connection close", []string{"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", ok}, readAll},
		{"HTTP/1.0 without length", []string{"HTTP/1.0 200 OK\r\n\r\nok", ok}, readAll},
		{"body abandoned", []string{"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789", ok}, func(r io.Reader) { _, _ = r.Read(make([]byte, 2)) }},
		{"bytes after the body", []string{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokGARBAGE", ok}, readAll},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newRawUpstream(t, tc.replies...)
			rt := newH1(up.addr, nil)
			for i := 0; i < 2; i++ {
				req, _ := http.NewRequest(http.MethodGet, "http://"+up.addr+"/", nil)
				resp, err := rt.RoundTrip(req)
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				tc.read(resp.Body)
				_ = resp.Body.Close()
			}
			if n := up.conns.Load(); n != 2 {
				t.Errorf("used %d connections, want 2: the first one must not be reused", n)
			}
		})
	}
}

func readAll(r io.Reader) { _, _ = io.ReadAll(r) }

func TestH1TransportRetriesAPooledConnectionTheUpstreamClosed(t *testing.T) {
	// Each connection answers one request, then the upstream closes it.
	up := newRawUpstream(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	rt := newH1(up.addr, nil)
	for i := 0; i < 3; i++ {
		_, body, err := get(t, rt, context.Background(), http.MethodGet, "http://"+up.addr+"/")
		if err != nil || body != "ok" {
			t.Fatalf("request %d: %q, %v; want ok", i, body, err)
		}
		time.Sleep(20 * time.Millisecond) // let the close reach the pooled connection
	}
	if n := up.conns.Load(); n != 3 {
		t.Errorf("used %d connections, want 3", n)
	}
}

func TestH1TransportFailsOnBadUpstreams(t *testing.T) {
	for _, tc := range []struct {
		name, reply, want string
	}{
		{"malformed status line", "HTTP/1.1 abc\r\n\r\n", "malformed HTTP status code"},
		{"switching protocols unasked", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", "switched protocols"},
		{"closed before responding", "", "no response from the upstream"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newRawUpstream(t, tc.reply)
			_, _, err := get(t, newH1(up.addr, nil), context.Background(), http.MethodGet, "http://"+up.addr+"/")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestH1TransportCancellation(t *testing.T) {
	up, _ := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/midway" {
			_, _ = io.WriteString(w, "first part")
			w.(http.Flusher).Flush()
		}
		<-r.Context().Done() // the proxy's side went away
	}))
	for _, path := range []string{"/head", "/midway"} {
		t.Run(path, func(t *testing.T) {
			rt := newH1(up.Listener.Addr().String(), nil)
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(100*time.Millisecond, cancel)
			start := time.Now()
			_, _, err := get(t, rt, ctx, http.MethodGet, up.URL+path)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("got %v, want the caller's cancellation", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("cancellation took %v", d)
			}
			if len(rt.idle) != 0 {
				t.Error("a cancelled exchange's connection was pooled")
			}
		})
	}
}

func TestH1TransportClosesIdleConnections(t *testing.T) {
	up, conns := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	rt := newH1(up.Listener.Addr().String(), nil)
	rt.idleTimeout = 50 * time.Millisecond
	if _, _, err := get(t, rt, context.Background(), http.MethodGet, up.URL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		rt.mu.Lock()
		n := len(rt.idle)
		rt.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("an idle connection outlived the idle timeout with no request coming")
		}
		time.Sleep(10 * time.Millisecond)
	}
	rt.idleTimeout = time.Minute
	for i := 0; i < 2; i++ {
		if _, _, err := get(t, rt, context.Background(), http.MethodGet, up.URL); err != nil {
			t.Fatal(err)
		}
		rt.CloseIdleConnections()
	}
	if n := conns.Load(); n != 3 {
		t.Errorf("used %d connections, want 3: expiry and CloseIdleConnections each end one", n)
	}
}

func TestH1TransportPoolIsBounded(t *testing.T) {
	release := make(chan struct{})
	up, _ := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		<-release
		_, _ = io.WriteString(w, "ok")
	}))
	rt := newH1(up.Listener.Addr().String(), nil)
	rt.maxIdle = 2
	errs := make(chan error)
	for i := 0; i < 5; i++ {
		go func() { _, _, err := get(t, rt, context.Background(), http.MethodGet, up.URL); errs <- err }()
	}
	time.Sleep(100 * time.Millisecond)
	close(release)
	for i := 0; i < 5; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := len(rt.idle); n != 2 {
		t.Errorf("pooled %d connections after 5 concurrent requests, want maxIdle 2", n)
	}
}

func TestH1TransportDropsAConnectionWhoseBodyBrokeOff(t *testing.T) {
	up := newRawUpstream(t, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234")
	rt := newH1(up.addr, nil)
	_, body, err := get(t, rt, context.Background(), http.MethodGet, "http://"+up.addr+"/")
	if !errors.Is(err, io.ErrUnexpectedEOF) || body != "01234" {
		t.Fatalf("got %q, %v; want the 5 bytes sent and io.ErrUnexpectedEOF", body, err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+up.addr+"/", nil)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.ReadAll(resp.Body)
	for i := 0; i < 2; i++ {
		if _, err := resp.Body.Read(make([]byte, 1)); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("read %d after the break: %v, want io.ErrUnexpectedEOF again", i, err)
		}
	}
	if n := len(rt.idle); n != 0 {
		t.Errorf("%d connections pooled after a body broke off, want 0", n)
	}
}

func TestH1TransportDropsAConnectionTheUpstreamSpokeOnWhileIdle(t *testing.T) {
	const ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	for _, tc := range []struct {
		name   string
		method string
		first  string // the answer to the first request
		unsaid string // sent afterwards, while the connection is pooled
	}{
		{"a 408 before closing", http.MethodGet, ok, "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"},
		{"a body after a HEAD", http.MethodHead, "HTTP/1.1 200 OK\r\nContent-Length: 19\r\n\r\n", "HTTP/1.1 666 Wrong\r\n\r\n"},
		{"a body after a 204", http.MethodGet, "HTTP/1.1 204 No Content\r\n\r\n", "HTTP/1.1 666 Wrong\r\nContent-Length: 0\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pooled, said := make(chan struct{}), make(chan struct{})
			up := newScriptedUpstream(t, func(n int64, c net.Conn, br *bufio.Reader) {
				if n == 0 {
					if _, err := http.ReadRequest(br); err != nil {
						return
					}
					_, _ = io.WriteString(c, tc.first)
					<-pooled
					_, _ = io.WriteString(c, tc.unsaid)
					close(said)
					_, _ = br.ReadByte() // hold the connection open until the caller closes it
					return
				}
				for {
					if _, err := http.ReadRequest(br); err != nil {
						return
					}
					_, _ = io.WriteString(c, ok)
				}
			})
			rt := newH1(up.addr, nil)
			if _, _, err := get(t, rt, context.Background(), tc.method, "http://"+up.addr+"/"); err != nil {
				t.Fatal(err)
			}
			if len(rt.idle) != 1 {
				t.Fatal("the first connection was not pooled; the test shows nothing")
			}
			close(pooled)
			<-said
			// Wait until the unasked bytes are there to be read; peeking
			// leaves them in place.
			for deadline := time.Now().Add(5 * time.Second); quietSinceIdle(rt.idle[0].Conn); time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the upstream's unasked bytes never arrived")
				}
			}
			resp, body, err := get(t, rt, context.Background(), http.MethodGet, "http://"+up.addr+"/")
			if err != nil || resp.StatusCode != http.StatusOK || body != "ok" {
				t.Fatalf("second request: %v, %q, %v; want 200 ok from a new connection", resp, body, err)
			}
			if n := up.conns.Load(); n != 2 {
				t.Errorf("used %d connections, want 2", n)
			}
		})
	}
}

func TestH1TransportBoundsTheResponseHead(t *testing.T) {
	for name, head := range map[string]struct{ start, repeat string }{
		"endless headers":     {"HTTP/1.1 200 OK\r\n", "X-Filler: " + strings.Repeat("a", 1000) + "\r\n"},
		"endless 1xx replies": {"", "HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n"},
	} {
		t.Run(name, func(t *testing.T) {
			up := newScriptedUpstream(t, func(_ int64, c net.Conn, br *bufio.Reader) {
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				_, _ = io.WriteString(c, head.start)
				chunk := strings.Repeat(head.repeat, 64)
				for sent := 0; sent < 2*maxResponseHead; sent += len(chunk) {
					if _, err := io.WriteString(c, chunk); err != nil {
						return // the transport gave up, as it should
					}
				}
			})
			_, _, err := get(t, newH1(up.addr, nil), context.Background(), http.MethodGet, "http://"+up.addr+"/")
			if !errors.Is(err, errResponseHeadTooLarge) {
				t.Fatalf("got %v, want %v", err, errResponseHeadTooLarge)
			}
		})
	}
}

func TestH1TransportReusesUnixSocketConnections(t *testing.T) {
	sock := t.TempDir() + "/up.sock"
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	_, conns := countingServerOn(t, ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	d := &net.Dialer{}
	rt := &h1Transport{
		dial:        func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "unix", sock) },
		maxIdle:     8,
		idleTimeout: time.Minute,
	}
	for i := 0; i < 5; i++ {
		if _, body, err := get(t, rt, context.Background(), http.MethodGet, "http://localhost/metrics"); err != nil || body != "ok" {
			t.Fatalf("request %d: %q, %v", i, body, err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("5 sequential requests over a unix socket used %d connections, want 1", n)
	}
}
