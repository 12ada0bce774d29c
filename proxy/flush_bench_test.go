package proxy

import (
	"bufio"
	"crypto/tls"
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

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
	"github.com/rbac-proxy/rbac-proxy/proxy/internal/fakeapi"
)

// BenchmarkLargeExposition decides whether coalescing flushes is worth a
// timer: a 256 KiB exposition (past the prefetch limit, so it streams, as an
// AMD exporter's does) written the way promhttp writes it (4 KiB writes, so
// 2 KiB chunks), proxied to HTTP/1.1 TLS clients. "each read" is the proxy
// as it is, flushing after every read from the upstream as
// httputil.ReverseProxy does; "coalesced 1ms" puts back the coalescing that
// was removed (made safe: it stops before the handler returns). Both run in
// the same process against the same upstream; socket-writes/op counts the
// writes that reached the client connections.
func BenchmarkLargeExposition(b *testing.B) {
	const size = 256 << 10
	line := "DCGM_FI_DEV_GPU_TEMP{gpu=\"0\",UUID=\"GPU-3f1c2a7e-0000-4b6e-9c1d-5a8f0e2d7b00\"} 41\n"
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		bw := bufio.NewWriterSize(w, 4096)
		for n := 0; n < size; n += len(line) {
			_, _ = bw.WriteString(line)
		}
		_ = bw.Flush()
	}))
	defer up.Close()
	api := fakeapi.New(b)
	api.AddToken("tok", authnv1.UserInfo{Username: "alice"})
	api.SetAllow(func(authzv1.SubjectAccessReviewSpec) bool { return true })
	f := config.NewFlags("rbac-proxy")
	if err := f.Parse([]string{"--secure-listen-address=127.0.0.1:0", "--upstream=" + up.URL + "/"}); err != nil {
		b.Fatal(err)
	}
	cfg, err := f.Config()
	if err != nil {
		b.Fatal(err)
	}
	srv, err := New(cfg, Options{Clients: clientsOf(b, api)})
	if err != nil {
		b.Fatal(err)
	}
	for _, v := range []struct {
		name string
		h    http.Handler
	}{
		{"each read", srv.Handler()},
		{"coalesced 1ms", coalesceFlushes(srv.Handler())},
	} {
		b.Run(v.name, func(b *testing.B) {
			var writes atomic.Int64
			front := httptest.NewUnstartedServer(v.h)
			front.Listener = countingListener{Listener: front.Listener, writes: &writes}
			front.StartTLS() // HTTP/1.1 only, as Prometheus scrapes
			defer front.Close()
			pool := front.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
			b.SetParallelism(16) // 32 connections on 2 cores, as make bench-proxy
			b.SetBytes(size)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
				defer c.CloseIdleConnections()
				for pb.Next() {
					req, _ := http.NewRequest(http.MethodGet, front.URL+"/metrics", nil)
					req.Header.Set("Authorization", "Bearer tok")
					resp, err := c.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					n, _ := io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK || n < size {
						b.Errorf("status %d, %d bytes", resp.StatusCode, n)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(writes.Load())/float64(b.N), "socket-writes/op")
		})
	}
}

// countingListener counts the writes to its connections' sockets.
type countingListener struct {
	net.Listener
	writes *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	return countingWriteConn{Conn: c, writes: l.writes}, err
}

type countingWriteConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingWriteConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// coalesceFlushes is a flush coalescing that rbac-proxy once used, kept
// as the benchmark's reference: a flush is delayed by up to a millisecond so that
// the flushes of one burst become one, and the timer is stopped (under the
// lock that orders it with the handler's writes) before the handler
// returns, even when it panics.
func coalesceFlushes(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &coalescingWriter{ResponseWriter: w}
		defer cw.finish()
		next.ServeHTTP(cw, r)
	})
}

type coalescingWriter struct {
	http.ResponseWriter
	mu      sync.Mutex
	timer   *time.Timer
	pending bool
	done    bool
}

func (c *coalescingWriter) WriteHeader(code int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ResponseWriter.WriteHeader(code)
}

func (c *coalescingWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ResponseWriter.Write(p)
}

func (c *coalescingWriter) Flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done || c.pending {
		return
	}
	if strings.HasPrefix(c.ResponseWriter.Header().Get("Content-Type"), "text/event-stream") {
		_ = http.NewResponseController(c.ResponseWriter).Flush()
		return
	}
	c.pending = true
	if c.timer == nil {
		c.timer = time.AfterFunc(time.Millisecond, c.delayedFlush)
	} else {
		c.timer.Reset(time.Millisecond)
	}
}

func (c *coalescingWriter) delayedFlush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done || !c.pending {
		return
	}
	c.pending = false
	_ = http.NewResponseController(c.ResponseWriter).Flush()
}

func (c *coalescingWriter) finish() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done = true
	if c.timer != nil {
		c.timer.Stop()
	}
}

func (c *coalescingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
