package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
	"github.com/rbac-proxy/rbac-proxy/proxy/internal/fakeapi"
)

// rawH1 opens an HTTP/1.1 TLS connection to the proxy.
func rawH1(t *testing.T, e *testEnv) *tls.Conn {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", strings.TrimPrefix(e.base, "https://"),
		&tls.Config{RootCAs: e.ca.Pool(), NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// trickle writes one byte of body every interval until stop is closed or a
// write fails; it reports how many it wrote.
func trickle(conn net.Conn, interval time.Duration, stop <-chan struct{}) *atomic.Int64 {
	var n atomic.Int64
	go func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := conn.Write([]byte("x")); err != nil {
				return
			}
			n.Add(1)
		}
	}()
	return &n
}

// readAnswer reads one response from conn within d and then waits, up to
// d more, for the connection to close. It returns the status (0: none) and
// whether the proxy closed the connection.
func readAnswer(t *testing.T, conn net.Conn, d time.Duration) (status int, closed bool) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(d))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	_ = conn.SetReadDeadline(time.Now().Add(d))
	_, err = br.ReadByte()
	var ne net.Error
	closed = err != nil && !(errors.As(err, &ne) && ne.Timeout())
	return resp.StatusCode, closed
}

// TestRefusedRequestsAnswerAtOnceAndClose: a refused request that declares
// a body and sends it a byte at a time gets its answer at once, and its
// connection is closed without the rest of the body being waited for.
func TestRefusedRequestsAnswerAtOnceAndClose(t *testing.T) {
	api := fakeapi.New(t)
	api.AddToken("bob-token", authnv1.UserInfo{Username: "bob"}) // no RBAC
	e := newTestEnv(t)
	e.start(api, "--allow-paths=/metrics") // the body timeout (30s by default) is not what ends these
	for _, tc := range []struct {
		name    string
		request string
		want    int
	}{
		{"no credentials", "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nx", 401},
		{"bad token", "POST /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\nContent-Length: 100000\r\n\r\nx", 401},
		{"forbidden", "POST /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer bob-token\r\nContent-Length: 100000\r\n\r\nx", 403},
		{"path not allowed", "POST /debug HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nx", 404},
		{"chunked body, no credentials", "POST /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n186a0\r\nx", 401},
		{"headers too large", "POST /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 80<<10) + "\r\nContent-Length: 100000\r\n\r\nx", 431},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := rawH1(t, e)
			if _, err := io.WriteString(conn, tc.request); err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			defer close(stop)
			sent := trickle(conn, 100*time.Millisecond, stop)
			start := time.Now()
			status, closed := readAnswer(t, conn, 2*time.Second)
			if status != tc.want {
				t.Fatalf("got status %d after %v (0: no answer), want %d at once", status, time.Since(start).Round(time.Millisecond), tc.want)
			}
			if !closed {
				t.Fatalf("the connection was still open %v after the %d, %d body bytes later", time.Since(start).Round(time.Millisecond), status, sent.Load())
			}
			if el := time.Since(start); el > 2*time.Second {
				t.Fatalf("answer and close took %v", el)
			}
		})
	}
	if n := e.upstream.hits.Load(); n != 0 {
		t.Fatalf("the upstream saw %d requests", n)
	}
}

// TestRefusedHTTP2StreamIsAnswered: over HTTP/2 a refused request with a
// body that never ends gets its answer too (the stream is not reset before
// the answer is out).
func TestRefusedHTTP2StreamIsAnswered(t *testing.T) {
	e := newTestEnv(t)
	e.start(fakeapi.New(t))
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() { _, _ = pw.Write([]byte("x")) }()
	req, _ := http.NewRequest(http.MethodPost, e.base+"/metrics", pr)
	req.ContentLength = 100000
	resp, err := e.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != 401 {
		t.Fatalf("got %s %d, want HTTP/2 401", resp.Proto, resp.StatusCode)
	}
}

// TestSlowBodyIsCut: a body that does not arrive within
// --request-body-timeout is cut, on an authorized path and on an ignored
// one, and the connection is not held.
func TestSlowBodyIsCut(t *testing.T) {
	api := fakeapi.New(t)
	api.AddToken("alice-token", authnv1.UserInfo{Username: "alice"})
	api.SetAllow(func(s authzv1.SubjectAccessReviewSpec) bool { return s.User == "alice" })
	var got atomic.Int64
	up := newUpstreamServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		got.Store(n)
		if err != nil {
			http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
			return
		}
		_, _ = fmt.Fprintf(w, "read %d", n)
	}))
	for _, tc := range []struct {
		name, flags, request string
	}{
		{"authorized", "--allow-paths=/metrics", "POST /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer alice-token\r\nContent-Length: 1000\r\n\r\nx"},
		{"ignored path", "--ignore-paths=/upload", "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nx"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			e.start(api, "--upstream="+up, tc.flags, "--request-body-timeout=500ms", "--http2-disable")
			conn := rawH1(t, e)
			if _, err := io.WriteString(conn, tc.request); err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			defer close(stop)
			trickle(conn, 100*time.Millisecond, stop)
			start := time.Now()
			_ = conn.SetReadDeadline(time.Now().Add(4 * time.Second))
			_, err := io.Copy(io.Discard, conn) // whatever the answer, until the proxy closes
			el := time.Since(start)
			if err != nil {
				t.Fatalf("the connection was held %v (%v); the body deadline is 500ms", el.Round(time.Millisecond), err)
			}
			if el < 400*time.Millisecond || el > 2*time.Second {
				t.Fatalf("connection closed after %v, want about 500ms", el.Round(time.Millisecond))
			}
			if n := got.Load(); n >= 1000 {
				t.Fatalf("the upstream got the whole body (%d bytes)", n)
			}
		})
	}
}

// TestBodyDeadlineSparesLongResponses: once the body is in, its deadline is
// lifted; a response that takes longer than --request-body-timeout is not
// cut, and the connection is reused afterwards.
func TestBodyDeadlineSparesLongResponses(t *testing.T) {
	api := fakeapi.New(t)
	api.AddToken("alice-token", authnv1.UserInfo{Username: "alice"})
	api.SetAllow(func(s authzv1.SubjectAccessReviewSpec) bool { return s.User == "alice" })
	up := newUpstreamServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		for i := range 4 {
			_, _ = fmt.Fprintf(w, "%s %d\n", b, i)
			w.(http.Flusher).Flush()
			time.Sleep(400 * time.Millisecond)
		}
	}))
	for _, h2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("http2=%v", h2), func(t *testing.T) {
			e := newTestEnv(t)
			// The response (1.6 s) outlasts the body deadline (1 s) by a margin that a loaded
			// machine's scheduling does not eat up.
			e.start(api, "--upstream="+up, "--request-body-timeout=1s")
			c := e.client()
			if !h2 {
				c.Transport.(*http.Transport).ForceAttemptHTTP2 = false
				c.Transport.(*http.Transport).TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
			}
			var reused []bool
			for range 2 {
				req, _ := http.NewRequest(http.MethodPost, e.base+"/stream", strings.NewReader("hello"))
				req.Header.Set("Authorization", "Bearer alice-token")
				req = req.WithContext(httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
					GotConn: func(i httptrace.GotConnInfo) { reused = append(reused, i.Reused) }}))
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || string(b) != "hello 0\nhello 1\nhello 2\nhello 3\n" {
					t.Fatalf("got %d %q (%v): a response longer than the body deadline was cut", resp.StatusCode, b, err)
				}
			}
			if len(reused) != 2 || !reused[1] {
				t.Fatalf("connection reuse %v, want the second request on the first connection", reused)
			}
		})
	}
}

// TestBodyEndOutlastsTheResponseStart forces the interleaving that cut
// TestBodyDeadlineSparesLongResponses under CPU load: the response starts,
// and the HTTP/1 server closes the request body, before http.Transport's
// last read of the body, the one past its Content-Length. That read still
// finds the end of the body, so the upstream connection stays open and the
// response whole.
func TestBodyEndOutlastsTheResponseStart(t *testing.T) {
	more := make(chan struct{})
	up := newUpstreamServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = fmt.Fprintf(w, "%s 0\n", b)
		w.(http.Flusher).Flush()
		<-more
		_, _ = fmt.Fprintf(w, "%s 1\n", b)
	}))
	u := config.UpstreamConfig{URL: mustParseURL(t, up)}
	transport, err := newUpstreamTransport(u, &reloader{})
	if err != nil {
		t.Fatal(err)
	}
	upstream := newUpstreamHandler(u, transport, newMetrics(), logr.Discard())
	started := make(chan struct{})
	lastRead := make(chan error, 1)
	front := httptest.NewServer(connGuard{bodyTimeout: time.Minute, next: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = &heldBody{ReadCloser: r.Body, hold: started, last: lastRead}
		upstream.ServeHTTP(w, r)
	})})
	start, finish := sync.OnceFunc(func() { close(started) }), sync.OnceFunc(func() { close(more) })
	t.Cleanup(front.Close)
	t.Cleanup(func() { start(); finish() }) // runs first: the held read and the handler end

	resp, err := front.Client().Post(front.URL+"/stream", "text/plain", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	start() // the headers are here: the server has closed the request body
	if err := <-lastRead; err != io.EOF {
		t.Errorf("the Transport's read past the body's end, after the response started: %v, want io.EOF", err)
	}
	finish()
	b, err := io.ReadAll(resp.Body)
	if err != nil || string(b) != "hello 0\nhello 1\n" {
		t.Fatalf("got %q (%v): the upstream connection was closed mid-response", b, err)
	}
}

// heldBody holds the reads past the end of its body until hold is closed,
// and reports the first of them on last.
type heldBody struct {
	io.ReadCloser
	hold  chan struct{}
	last  chan error
	atEnd bool
}

func (b *heldBody) Read(p []byte) (int, error) {
	if b.atEnd {
		<-b.hold
	}
	n, err := b.ReadCloser.Read(p)
	if b.atEnd {
		select {
		case b.last <- err:
		default:
		}
	}
	b.atEnd = b.atEnd || err == io.EOF
	return n, err
}

// TestUpstreamErrorsKeepTheConnection: an error status from the upstream is
// its answer, not a refusal: the connection stays open.
func TestUpstreamErrorsKeepTheConnection(t *testing.T) {
	api := fakeapi.New(t)
	api.AddToken("alice-token", authnv1.UserInfo{Username: "alice"})
	api.SetAllow(func(s authzv1.SubjectAccessReviewSpec) bool { return s.User == "alice" })
	up := newUpstreamServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }))
	e := newTestEnv(t)
	e.start(api, "--upstream="+up, "--http2-disable")
	c := e.client()
	var reused []bool
	for range 2 {
		req, _ := http.NewRequest(http.MethodPost, e.base+"/gone", strings.NewReader("body"))
		req.Header.Set("Authorization", "Bearer alice-token")
		req = req.WithContext(httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) { reused = append(reused, i.Reused) }}))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 404 || resp.Header.Get("Connection") == "close" {
			t.Fatalf("got %d, Connection %q", resp.StatusCode, resp.Header.Get("Connection"))
		}
	}
	if !reused[1] {
		t.Fatal("the connection was closed after the upstream's 404")
	}
}

// TestMaxConnections: connection N+1 waits (its TLS handshake does not
// start) until one of the N closes; the gauge counts them.
func TestMaxConnections(t *testing.T) {
	e := newTestEnv(t)
	port := e.startWithEndpointsPort(fakeapi.New(t), "--max-connections=3")
	addr := strings.TrimPrefix(e.base, "https://")
	conf := &tls.Config{RootCAs: e.ca.Pool(), NextProtos: []string{"http/1.1"}, ServerName: "127.0.0.1"}
	var held []*tls.Conn
	for range 3 {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, conf)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	gauge := func() string {
		resp, err := e.client().Get("https://127.0.0.1:" + port + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, `rbac_proxy_open_connections{listener="proxy"}`) {
				return strings.Fields(l)[1]
			}
		}
		return "absent"
	}
	if g := gauge(); g != "3" {
		t.Fatalf("open connections gauge %s, want 3", g)
	}

	raw, err := net.DialTimeout("tcp", addr, 5*time.Second) // the kernel completes TCP
	if err != nil {
		t.Fatal(err)
	}
	fourth := tls.Client(raw, conf)
	defer fourth.Close()
	done := make(chan error, 1)
	go func() { done <- fourth.Handshake() }()
	select {
	case err := <-done:
		t.Fatalf("a fourth connection was served beyond --max-connections=3 (handshake: %v)", err)
	case <-time.After(500 * time.Millisecond):
	}
	held[0].Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the waiting connection's handshake failed: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the waiting connection was not served after a slot freed")
	}
	// The waiting connection is served normally.
	if _, err := io.WriteString(fourth, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if status, _ := readAnswer(t, fourth, 2*time.Second); status != 401 {
		t.Fatalf("the waiting connection got %d, want 401", status)
	}
}

// TestIdleHTTP2PrefaceIsClosed: an HTTP/2 connection that sends its preface and SETTINGS and no
// stream is closed after --read-header-timeout, not held for --idle-timeout; before, a few a
// second held every --max-connections slot. A connection that serves requests is left alone.
func TestIdleHTTP2PrefaceIsClosed(t *testing.T) {
	e := newTestEnv(t)
	e.start(fakeapi.New(t), "--read-header-timeout=1s", "--idle-timeout=120s")
	addr := strings.TrimPrefix(e.base, "https://")
	conf := &tls.Config{RootCAs: e.ca.Pool(), NextProtos: []string{"h2"}, ServerName: "127.0.0.1"}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, conf)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.ConnectionState().NegotiatedProtocol != "h2" {
		t.Fatalf("negotiated %q, want h2", c.ConnectionState().NegotiatedProtocol)
	}
	// The client preface and an empty SETTINGS frame, then nothing.
	if _, err := io.WriteString(c, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	for {
		if _, err := c.Read(buf); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("the idle HTTP/2 connection was still open after %v", time.Since(start))
			}
			break // closed by the proxy: EOF or reset
		}
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("closed after %v, want about --read-header-timeout (1s)", took)
	}

	// A connection in use outlives the deadline.
	client := e.protoClient(true)
	for range 3 {
		resp, err := client.Get(e.base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		time.Sleep(600 * time.Millisecond)
	}
}
