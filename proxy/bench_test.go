package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
)

// BenchmarkHandlerCached measures the request pipeline with cached reviews
// (no TLS): path policy, token and SAR cache hits, header policy, proxying.
func BenchmarkHandlerCached(b *testing.B) {
	api := newFakeAPI(b)
	api.addToken("tok", authnv1.UserInfo{Username: "alice", Groups: []string{"system:serviceaccounts", "system:authenticated"}})
	api.setAllow(func(authzv1.SubjectAccessReviewSpec) bool { return true })
	payload := make([]byte, 32*1024)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(payload) }))
	defer up.Close()
	f := NewFlags("rbac-proxy")
	if err := f.Parse([]string{"--secure-listen-address=127.0.0.1:0", "--upstream=" + up.URL}); err != nil {
		b.Fatal(err)
	}
	cfg, err := f.Config()
	if err != nil {
		b.Fatal(err)
	}
	srv, err := New(cfg, Options{Reviewers: api.reviewers(b)})
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
