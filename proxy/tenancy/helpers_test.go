package tenancy

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
)

const (
	textType = "text/plain; version=0.0.4; charset=utf-8"
	omType   = "application/openmetrics-text; version=1.0.0; charset=utf-8"
)

// allowOnly is an Allow that says yes to the namespaces given and counts
// the questions it is asked.
type allowOnly struct {
	ns    map[string]bool
	asked map[string]int
	err   error
}

func newAllow(namespaces ...string) *allowOnly {
	a := &allowOnly{ns: map[string]bool{}, asked: map[string]int{}}
	for _, ns := range namespaces {
		a.ns[ns] = true
	}
	return a
}

func (a *allowOnly) allow(_ context.Context, ns string) (bool, error) {
	a.asked[ns]++
	if a.err != nil {
		return false, a.err
	}
	return a.ns[ns], nil
}

// recorder is an http.ResponseWriter that notes whether anything was written.
type recorder struct {
	*httptest.ResponseRecorder
	wroteHeader bool
}

func newRecorder() *recorder { return &recorder{ResponseRecorder: httptest.NewRecorder()} }

func (r *recorder) WriteHeader(code int) {
	r.wroteHeader = true
	r.ResponseRecorder.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wroteHeader = true
	return r.ResponseRecorder.Write(b)
}

// upstream is a 200 response of contentType with body, gzipped when gz.
func upstream(contentType, body string, gz bool) *http.Response {
	h := http.Header{"Content-Type": {contentType}}
	b := []byte(body)
	if gz {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(b)
		_ = zw.Close()
		b = buf.Bytes()
		h.Set("Content-Encoding", "gzip")
	}
	return &http.Response{StatusCode: http.StatusOK, Header: h, Body: io.NopCloser(bytes.NewReader(b))}
}

// body is what rec got, gunzipped when it says gzip.
func body(t testing.TB, rec *recorder) string {
	t.Helper()
	b := rec.Body.Bytes()
	if rec.Header().Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("gunzip: %v", err)
		}
		if b, err = io.ReadAll(zr); err != nil {
			t.Fatalf("gunzip: %v", err)
		}
	}
	return string(b)
}

// parsed is every series of an exposition (its labels, as Prometheus
// stores them) and its metadata entries, read with the same parser in one
// piece; err is the parser's.
type parsed struct {
	series []labels.Labels
	meta   []string // "HELP name", "TYPE name", "UNIT name"
}

func parse(contentType, exposition string) (parsed, error) {
	var out parsed
	p, err := textparse.New([]byte(exposition), contentType, labels.NewSymbolTable(), textparse.ParserOptions{})
	if p == nil {
		return out, err
	}
	for {
		e, err := p.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		switch e {
		case textparse.EntrySeries:
			var ls labels.Labels
			p.Labels(&ls)
			out.series = append(out.series, ls)
		case textparse.EntryHelp:
			m, _ := p.Help()
			out.meta = append(out.meta, "HELP "+string(m))
		case textparse.EntryType:
			m, _ := p.Type()
			out.meta = append(out.meta, "TYPE "+string(m))
		case textparse.EntryUnit:
			m, _ := p.Unit()
			out.meta = append(out.meta, "UNIT "+string(m))
		}
	}
}

// seriesKeys is the series of p as strings, in order.
func seriesKeys(p parsed) []string {
	keys := make([]string, len(p.series))
	for i, ls := range p.series {
		keys[i] = ls.String()
	}
	return keys
}

// wantVisible is, by the package's rule, whether a series is visible to a
// caller allowed the namespaces of a, with namespace labels names.
func wantVisible(ls labels.Labels, names []string, a *allowOnly) bool {
	named := false
	for _, n := range names {
		v := ls.Get(n)
		if v == "" {
			continue
		}
		named = true
		if !a.ns[v] {
			return false
		}
	}
	return named
}

func lines(s ...string) string { return strings.Join(s, "\n") + "\n" }
