package tenancy

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/rbac-proxy/rbac-proxy/proxy/tenancy/tenancytest"
)

// FuzzServe checks, for any exposition in either format cut into chunks of
// any size, that a caller allowed team-a and team-c gets an output that
// parses, holds no series whose namespace labels name another namespace, and
// drops none that it may see; and that an exposition the parser reads whole
// is refused only for a namespace label given twice.
func FuzzServe(f *testing.F) {
	f.Add([]byte(dcgmSmall), false, uint16(0))
	f.Add([]byte(dcgmSmall), false, uint16(100))
	f.Add([]byte(omSmall), true, uint16(0))
	f.Add([]byte(omSmall), true, uint16(50))
	f.Add([]byte(tenancytest.DCGM(tenancytest.EightGPUs[:3], 1)), false, uint16(500))
	f.Add([]byte(lines(`x{namespace="team-a",exported_namespace="team-b"} 1`, `x{exported_namespace="team-c"} 1 # {a="b"} 1`)), false, uint16(3))
	f.Fuzz(func(t *testing.T, in []byte, openMetrics bool, size uint16) {
		contentType := textType
		if openMetrics {
			contentType = omType
		}
		chunk := int(size)
		if chunk == 0 {
			chunk = chunkSize
		}
		a := newAllow("team-a", "team-c")
		rec := newRecorder()
		err := serve(context.Background(), rec, upstream(contentType, string(in), false), "", DefaultNamespaceLabels, a.allow, chunk)

		whole, werr := parse(contentType, string(in))
		var visible []string
		dup := false
		for _, ls := range whole.series {
			if wantVisible(ls, DefaultNamespaceLabels, a) {
				visible = append(visible, ls.String())
			}
			for _, n := range DefaultNamespaceLabels {
				seen := 0
				ls.Range(func(l labels.Label) {
					if l.Name == n {
						seen++
					}
				})
				dup = dup || seen > 1
			}
		}
		if err != nil {
			if !errors.Is(err, ErrNothingVisible) && rec.wroteHeader && werr != nil {
				return // a parse error after the first chunk: the caller aborts
			}
			if errors.Is(err, ErrNothingVisible) {
				if rec.wroteHeader {
					t.Fatal("ErrNothingVisible after writing")
				}
				if werr == nil && len(visible) > 0 {
					t.Fatalf("ErrNothingVisible, but %d series are visible", len(visible))
				}
				return
			}
			// The lexers end at a NUL byte, so the whole parse did not read
			// what follows one; the filter refuses it.
			if werr == nil && !dup && !quotedNewline(in) && !bytes.ContainsRune(in, 0) {
				t.Fatalf("refused an exposition that parses whole: %v", err)
			}
			return
		}
		if werr != nil {
			t.Fatalf("served an exposition that does not parse whole (%v):\n%s", werr, body(t, rec))
		}
		if dup {
			t.Fatal("served a series with a namespace label twice")
		}
		got, err := parse(contentType, body(t, rec))
		if err != nil {
			t.Fatalf("the output does not parse: %v\n%s", err, body(t, rec))
		}
		for _, ls := range got.series {
			if !wantVisible(ls, DefaultNamespaceLabels, a) {
				t.Fatalf("the output shows %s", ls)
			}
		}
		if diff := cmp.Diff(visible, seriesKeys(got)); diff != "" {
			t.Fatalf("series shown (-visible +got):\n%s", diff)
		}
	})
}

// quotedNewline reports whether in may have a raw newline inside a quoted
// string, which the filter refuses (filter.go's lineFinder) though the
// parser reads it. It over-reports after a comment with an odd number of
// quotes, which only excuses a refusal.
func quotedNewline(in []byte) bool {
	quoted := false
	for i := 0; i < len(in); i++ {
		switch in[i] {
		case '\\':
			i++
		case '"':
			quoted = !quoted
		case '\n':
			if quoted {
				return true
			}
		}
	}
	return false
}
