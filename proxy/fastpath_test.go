package proxy

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"

	"github.com/rbac-proxy/rbac-proxy/proxy/internal/fakeapi"
)

func TestIsExposition(t *testing.T) {
	for _, tc := range []struct {
		contentType string
		want        bool
	}{
		{"text/plain; version=0.0.4; charset=utf-8; escaping=underscores", true}, // promhttp
		{"text/plain;version=0.0.4", true},
		{"TEXT/PLAIN; Version=0.0.4", true},
		{"application/openmetrics-text; version=1.0.0; charset=utf-8", true},
		{"application/openmetrics-text", true},
		{"application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited", true},
		{"text/plain; charset=utf-8", false}, // could be a log stream
		{"text/plain", false},
		{"application/vnd.google.protobuf", false},
		{"application/json", false},
		{"text/event-stream", false},
		{"", false},
	} {
		if got := isExposition(tc.contentType); got != tc.want {
			t.Errorf("isExposition(%q) = %v, want %v", tc.contentType, got, tc.want)
		}
	}
}

// TestPrefetchedExpositions: a small exposition is answered whole with a
// Content-Length; a large one streams on past the prefix; one that breaks
// off is a 502, never a truncated 200. TestStreamingResponse shows other
// bodies of unknown length still stream.
func TestPrefetchedExpositions(t *testing.T) {
	const exposition = "text/plain; version=0.0.4; charset=utf-8"
	small := strings.Repeat("DCGM_FI_DEV_GPU_TEMP{gpu=\"0\"} 41\n", 1000) // 34 KB
	// One release per protocol: /large waits for its own.
	release := map[string]chan struct{}{"1": make(chan struct{}), "2": make(chan struct{})}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/small":
			w.Header().Set("Content-Type", exposition)
			_, _ = io.WriteString(w, small[:1000]) // several chunks: the length is unknown upstream
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, small[1000:])
		case "/large":
			w.Header().Set("Content-Type", exposition)
			_, _ = w.Write(bytes.Repeat([]byte("a"), prefetchLimit+1000))
			w.(http.Flusher).Flush()
			<-release[r.URL.Query().Get("proto")] // the rest comes only once the client has the beginning
			_, _ = io.WriteString(w, "end\n")
		case "/broken":
			w.Header().Set("Content-Type", exposition)
			_, _ = io.WriteString(w, "partial 1\n")
			w.(http.Flusher).Flush()
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_ = conn.Close() // no terminating chunk
			}
		}
	}))
	t.Cleanup(up.Close)
	api := fakeapi.New(t)
	api.AddToken("tok", authnv1.UserInfo{Username: "alice"})
	api.SetAllow(func(authzv1.SubjectAccessReviewSpec) bool { return true })
	e := newTestEnv(t)
	e.start(api, "--upstream="+up.URL)
	// Small expositions are corked into one write on HTTP/1.1 (what Prometheus speaks) and never
	// on HTTP/2, where streams share the connection: both must deliver the same.
	for _, proto := range []string{"1", "2"} {
		c := e.client()
		if proto == "1" {
			c.Transport.(*http.Transport).TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}

		get := func(path string) *http.Response {
			t.Helper()
			resp, err := c.Do(mustRequest(t, e.base+path+"?proto="+proto, "tok"))
			if err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
			if resp.ProtoMajor != int(proto[0]-'0') {
				t.Fatalf("answered over %s, want HTTP/%s", resp.Proto, proto)
			}
			return resp
		}

		t.Run("HTTP/"+proto+": small exposition is answered whole", func(t *testing.T) {
			resp := get("/small")
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || string(body) != small {
				t.Fatalf("status %d, %d bytes, want 200 and %d bytes", resp.StatusCode, len(body), len(small))
			}
			if resp.ContentLength != int64(len(small)) {
				t.Fatalf("Content-Length %d, want %d", resp.ContentLength, len(small))
			}
		})

		t.Run("HTTP/"+proto+": large exposition streams past the prefix", func(t *testing.T) {
			resp := get("/large")
			defer resp.Body.Close()
			if resp.ContentLength != -1 {
				t.Fatalf("Content-Length %d for a body longer than the prefix", resp.ContentLength)
			}
			got := make(chan int, 1)
			go func() { n, _ := io.ReadFull(resp.Body, make([]byte, prefetchLimit+1000)); got <- n }()
			select {
			case n := <-got:
				if n != prefetchLimit+1000 {
					t.Fatalf("read %d bytes", n)
				}
			case <-time.After(3 * time.Second):
				close(release[proto])
				t.Fatal("the beginning was held back until the response ended: not streamed")
			}
			close(release[proto])
			rest, _ := io.ReadAll(resp.Body)
			if string(rest) != "end\n" {
				t.Fatalf("rest %q", rest)
			}
		})

		t.Run("HTTP/"+proto+": broken exposition is a 502", func(t *testing.T) {
			resp := get("/broken")
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusBadGateway {
				t.Fatalf("status %d, want 502", resp.StatusCode)
			}
		})

	}
}

// countingConn records each write that reaches the socket.
type countingConn struct {
	net.Conn
	mu     sync.Mutex
	writes [][]byte
	fail   error
	closed bool
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return 0, c.fail
	}
	c.writes = append(c.writes, append([]byte(nil), p...))
	return len(p), nil
}

func (c *countingConn) Close() error { c.closed = true; return nil }

func TestCorkConn(t *testing.T) {
	t.Run("uncorked writes go straight through", func(t *testing.T) {
		raw := &countingConn{}
		cc := &corkConn{Conn: raw}
		for _, p := range []string{"a", "bb"} {
			if n, err := cc.Write([]byte(p)); n != len(p) || err != nil {
				t.Fatalf("Write %q = %d, %v", p, n, err)
			}
		}
		if len(raw.writes) != 2 {
			t.Fatalf("%d writes reached the socket, want 2", len(raw.writes))
		}
	})

	t.Run("corked records leave in one write", func(t *testing.T) {
		raw := &countingConn{}
		cc := &corkConn{Conn: raw}
		cc.cork()
		for _, p := range []string{"header", "record-1", "record-2"} {
			if n, err := cc.Write([]byte(p)); n != len(p) || err != nil {
				t.Fatalf("Write %q = %d, %v", p, n, err)
			}
		}
		if len(raw.writes) != 0 {
			t.Fatalf("%d writes reached the socket while corked", len(raw.writes))
		}
		cc.uncork()
		if len(raw.writes) != 1 || string(raw.writes[0]) != "headerrecord-1record-2" {
			t.Fatalf("after uncork the socket got %q, want one write of everything", raw.writes)
		}
		if _, _ = cc.Write([]byte("next")); len(raw.writes) != 2 {
			t.Fatalf("uncorked connection still gathers writes: %q", raw.writes)
		}
	})

	t.Run("a corked connection never holds more than its limit", func(t *testing.T) {
		raw := &countingConn{}
		cc := &corkConn{Conn: raw}
		cc.cork()
		big := make([]byte, corkLimit-10)
		_, _ = cc.Write(big)
		_, _ = cc.Write(make([]byte, 20)) // would overflow: what was gathered goes first
		if len(raw.writes) != 1 || len(raw.writes[0]) != len(big) {
			t.Fatalf("socket got %d writes, want the gathered %d bytes flushed", len(raw.writes), len(big))
		}
		_, _ = cc.Write(make([]byte, corkLimit+1)) // larger than the buffer: straight through
		if len(raw.writes) != 3 {
			t.Fatalf("socket got %d writes, want 3", len(raw.writes))
		}
		cc.uncork()
	})

	t.Run("a failed flush closes the connection", func(t *testing.T) {
		raw := &countingConn{fail: errors.New("broken pipe")}
		cc := &corkConn{Conn: raw}
		cc.cork()
		_, _ = cc.Write([]byte("response"))
		cc.uncork()
		if !raw.closed {
			t.Fatal("the connection stayed open after its response was lost")
		}
		if _, err := cc.Write([]byte("more")); err == nil {
			t.Fatal("a write after a failed flush succeeded")
		}
	})
}

// TestSmallExpositionInOneWrite: on an HTTP/1.1 keep-alive connection, each
// answer of a prefetched exposition reaches the socket in one write, not one
// per TLS record.
func TestSmallExpositionInOneWrite(t *testing.T) {
	payload := strings.Repeat("DCGM_FI_DEV_GPU_TEMP{gpu=\"0\"} 41\n", 1000) // 34 KB: three TLS records
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = io.WriteString(w, payload)
	}))
	t.Cleanup(up.Close)
	api := fakeapi.New(t)
	api.AddToken("tok", authnv1.UserInfo{Username: "alice"})
	api.SetAllow(func(authzv1.SubjectAccessReviewSpec) bool { return true })
	var writes atomic.Int64
	e := newTestEnv(t)
	e.beforeRun = func(srv *Server) {
		tl := srv.servers[0].ln.(tlsListener)
		tl.Listener = countingListener{Listener: tl.Listener, writes: &writes}
		srv.servers[0].ln = tl
	}
	e.start(api, "--upstream="+up.URL)

	c := e.client()
	c.Transport.(*http.Transport).TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	get := func() {
		t.Helper()
		if code, body := e.get(c, "/metrics", bearer("tok")); code != http.StatusOK || body != payload {
			t.Fatalf("status %d, %d bytes", code, len(body))
		}
	}
	get() // the handshake, and the first records, which crypto/tls keeps small
	for range 200 << 10 / len(payload) {
		get() // past crypto/tls's 128 KB of small records: full 16 KB records from here
	}
	before := writes.Load()
	const n = 10
	for range n {
		get()
	}
	if got := writes.Load() - before; got != n {
		t.Fatalf("%d socket writes for %d answers, want one each", got, n)
	}
}
