package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
	"github.com/rbac-proxy/rbac-proxy/proxy/internal/fakeapi"
)

// BenchmarkHandlerCached measures the request pipeline with cached reviews
// (no TLS): path policy, token and SAR cache hits, header policy, proxying.
func BenchmarkHandlerCached(b *testing.B) {
	api := fakeapi.New(b)
	api.AddToken("tok", authnv1.UserInfo{Username: "alice", Groups: []string{"system:serviceaccounts", "system:authenticated"}})
	api.SetAllow(func(authzv1.SubjectAccessReviewSpec) bool { return true })
	payload := make([]byte, 32*1024)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(payload) }))
	defer up.Close()
	f := config.NewFlags("rbac-proxy")
	if err := f.Parse([]string{"--secure-listen-address=127.0.0.1:0", "--upstream=" + up.URL}); err != nil {
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
	h := srv.Handler()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			r.Header.Set("Authorization", "Bearer tok")
			w := &discardWriter{h: http.Header{}}
			h.ServeHTTP(w, r)
			if w.code != 0 && w.code != 200 {
				b.Fatalf("status %d", w.code)
			}
		}
	})
}

type discardWriter struct {
	h    http.Header
	code int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return io.Discard.Write(p) }
func (d *discardWriter) WriteHeader(c int)           { d.code = c }

// BenchmarkServerTLS measures the whole proxy as a scrape sees it: HTTP/1.1
// keep-alive clients over TLS, cached reviews, a 32 KB response streamed
// from a plain-HTTP upstream. The client and upstream run in this process
// too, so compare its profile's proxy frames, not its total.
func BenchmarkServerTLS(b *testing.B) {
	api := fakeapi.New(b)
	api.AddToken("tok", authnv1.UserInfo{Username: "alice", Groups: []string{"system:authenticated"}})
	api.SetAllow(func(authzv1.SubjectAccessReviewSpec) bool { return true })
	payload := make([]byte, 32*1024)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write(payload)
	}))
	defer up.Close()
	e := newTestEnv(b)
	f := config.NewFlags("rbac-proxy")
	if err := f.Parse(append([]string{"--secure-listen-address=127.0.0.1:0", "--upstream=" + up.URL + "/"}, e.servingFlags()...)); err != nil {
		b.Fatal(err)
	}
	cfg, err := f.Config()
	if err != nil {
		b.Fatal(err)
	}
	e.startConfig(cfg, Options{Clients: clientsOf(b, api)})
	pool := x509.NewCertPool()
	pool.AddCert(e.ca.Cert)
	b.SetParallelism(16) // with GOMAXPROCS=2: 32 connections, as make bench-proxy
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := &http.Client{Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool},
			TLSNextProto:    map[string]func(string, *tls.Conn) http.RoundTripper{}, // HTTP/1.1, as Prometheus
		}}
		defer c.CloseIdleConnections()
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodGet, e.base+"/metrics", nil)
			req.Header.Set("Authorization", "Bearer tok")
			resp, err := c.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || n != int64(len(payload)) {
				b.Errorf("status %d, %d bytes", resp.StatusCode, n)
				return
			}
		}
	})
}
