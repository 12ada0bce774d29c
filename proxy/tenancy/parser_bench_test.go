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
// byte slice entry by entry. textparse-lexer is textparse without building
// the labels: what the filter costs where it keeps a decision by label set.
func BenchmarkParser(b *testing.B) {
	in := []byte(tenancytest.AMD(1 << 20))
	for _, withLabels := range []bool{true, false} {
		name := "textparse"
		if !withLabels {
			name = "textparse-lexer"
		}
		b.Run(name, func(b *testing.B) {
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
					if withLabels && e == textparse.EntrySeries {
						p.Labels(&ls)
					}
				}
			}
		})
	}
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
