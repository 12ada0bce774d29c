package tenancy

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"

	"github.com/rbac-proxy/rbac-proxy/proxy/tenancy/tenancytest"
)

// BenchmarkParser is the benchmark the parser was chosen by: each of the
// ecosystem's text parsers reading every series' labels of the 1 MB
// AMD-shaped exposition. expfmt's TextParser returns the whole exposition as
// a map of families (nothing streams out before the end); textparse walks a
// byte slice entry by entry.
func BenchmarkParser(b *testing.B) {
	in := []byte(tenancytest.AMD(1 << 20))
	b.Run("textparse", func(b *testing.B) {
		b.SetBytes(int64(len(in)))
		b.ReportAllocs()
		st := labels.NewSymbolTable()
		var ls labels.Labels
		for b.Loop() {
			p := textparse.NewPromParser(in, st, false)
			for {
				e, err := p.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				if e == textparse.EntrySeries {
					p.Labels(&ls)
				}
			}
		}
	})
	b.Run("textparse-nolabels", func(b *testing.B) {
		b.SetBytes(int64(len(in)))
		b.ReportAllocs()
		st := labels.NewSymbolTable()
		for b.Loop() {
			p := textparse.NewPromParser(in, st, false)
			for {
				_, err := p.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("expfmt", func(b *testing.B) {
		b.SetBytes(int64(len(in)))
		b.ReportAllocs()
		for b.Loop() {
			p := expfmt.NewTextParser(model.UTF8Validation)
			if _, err := p.TextToMetricFamilies(bytes.NewReader(in)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
