package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
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

// TestUpstreamTransportKeepsResponsesWithTheirRequests: whatever an upstream
// sends besides the answer to the request in flight (bytes past a body, an
// answer nobody asked for while the connection was idle, the rest of a body
// the proxy stopped reading, a late answer to a request that was given up)
// never becomes the next caller's response. The first connection misbehaves
// after its first answer; every later connection answers "ok".
//
// (No transport can tell bytes that arrive after the next request was written
// from that request's answer; an upstream sees every caller's request and can
// answer any of them with anything, so that is no leak between callers.)
func TestUpstreamTransportKeepsResponsesWithTheirRequests(t *testing.T) {
	const ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	for _, tc := range []struct {
		name   string
		method string
		first  string // the first connection's answer to its first request
		then   string // what it sends afterwards, while the proxy holds the connection
		use    func(t *testing.T, resp *http.Response, err error)
	}{
		{name: "bytes past the body", method: http.MethodGet,
			first: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstolen"},
		{name: "a 408 while idle", method: http.MethodGet, first: ok,
			then: "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"},
		{name: "a body after a HEAD", method: http.MethodHead, first: "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n",
			then: "stolen"},
		{name: "a body after a 204", method: http.MethodGet, first: "HTTP/1.1 204 No Content\r\n\r\n",
			then: "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nstolen"},
		{name: "a body left unread", method: http.MethodGet,
			first: "HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n01234567890123456789",
			then:  "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nstolen",
			use: func(t *testing.T, resp *http.Response, err error) {
				if err != nil {
					t.Fatal(err)
				}
				_, _ = resp.Body.Read(make([]byte, 2)) // and go away
				_ = resp.Body.Close()
			}},
		{name: "a late answer to a request given up", method: http.MethodGet,
			then: "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nstolen",
			use: func(t *testing.T, _ *http.Response, err error) {
				if err == nil {
					t.Fatal("a request the upstream never answered succeeded")
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Each step waits for the last, not for a time: the extra bytes
			// go once the proxy is done with the first request, and the next
			// requests once it has closed the connection they came on.
			firstDone, dropped := make(chan struct{}), make(chan struct{})
			up := newScriptedUpstream(t, func(n int64, c net.Conn, br *bufio.Reader) {
				if n == 0 {
					defer close(dropped)
					if _, err := http.ReadRequest(br); err != nil {
						return
					}
					_, _ = io.WriteString(c, tc.first)
					<-firstDone
					_, _ = io.WriteString(c, tc.then)
					_, _ = io.Copy(io.Discard, br) // until the proxy closes the connection
					return
				}
				for {
					if _, err := http.ReadRequest(br); err != nil {
						return
					}
					_, _ = io.WriteString(c, ok)
				}
			})
			u := config.UpstreamConfig{URL: &url.URL{Scheme: "http", Host: up.addr, Path: "/"}}
			rt, err := newUpstreamTransport(u, &reloader{})
			if err != nil {
				t.Fatal(err)
			}
			wait := time.Minute
			if tc.first == "" { // never answered: given up
				wait = 50 * time.Millisecond
			}
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, tc.method, "http://"+up.addr+"/first", nil)
			resp, err := rt.RoundTrip(req)
			if tc.use != nil {
				tc.use(t, resp, err)
			} else {
				if err != nil {
					t.Fatalf("first request: %v", err)
				}
				_, _ = io.ReadAll(resp.Body)
				_ = resp.Body.Close()
			}
			close(firstDone)
			select {
			case <-dropped:
			case <-time.After(10 * time.Second):
				t.Fatal("the proxy kept the connection on which the upstream sent what nobody asked for")
			}
			for i := 0; i < 3; i++ {
				req, _ := http.NewRequest(http.MethodGet, "http://"+up.addr+"/next", nil)
				resp, err := rt.RoundTrip(req)
				if err != nil {
					t.Fatalf("request %d after: %v", i, err)
				}
				body, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK || string(body) != "ok" || strings.Contains(string(body), "stolen") {
					t.Fatalf("request %d after: %d %q, want 200 ok from another connection", i, resp.StatusCode, body)
				}
			}
			if n := up.conns.Load(); n != 2 {
				t.Errorf("%d connections, want 2: the misbehaving one must not be reused", n)
			}
		})
	}
}
