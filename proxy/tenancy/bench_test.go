package tenancy

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/rbac-proxy/rbac-proxy/proxy/tenancy/tenancytest"
)

// discard is a ResponseWriter that keeps nothing.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header       { return d.h }
func (*discard) WriteHeader(int)             {}
func (*discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) reset()                    { clear(d.h) }
func newDiscard() *discard                   { return &discard{h: http.Header{}} }

var _ io.Writer = (*discard)(nil)

// BenchmarkServe is the filter's CPU and allocation per tenant scrape: team-a
// (3 of 8 GPUs) reads a 64 KB 8-GPU dcgm-exporter exposition and a 1 MB
// AMD-shaped one, plain and with gzip both ways. The proxy's own per-scrape
// cost, to compare with, is measured by make bench-proxy.
func BenchmarkServe(b *testing.B) {
	allow := func(_ context.Context, ns string) (bool, error) { return ns == "team-a", nil }
	for _, tc := range []struct {
		name string
		in   string
	}{
		{"dcgm-64KB", tenancytest.DCGMOfSize(64 << 10)},
		{"amd-1MB", tenancytest.AMD(1 << 20)},
	} {
		for _, gz := range []bool{false, true} {
			name, acceptEncoding := tc.name, ""
			res := upstream(textType, tc.in, gz)
			raw, _ := io.ReadAll(res.Body)
			if gz {
				name, acceptEncoding = name+"-gzip", "gzip"
			}
			b.Run(name, func(b *testing.B) {
				b.SetBytes(int64(len(tc.in)))
				b.ReportAllocs()
				w := newDiscard()
				for b.Loop() {
					w.reset()
					res.Body = io.NopCloser(bytes.NewReader(raw))
					if err := Serve(context.Background(), w, res, acceptEncoding, DefaultNamespaceLabels, allow); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
