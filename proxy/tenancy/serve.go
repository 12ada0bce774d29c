package tenancy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
)

// Allow reports whether the caller may read namespace ns; an error aborts the filter (fail closed).
type Allow func(ctx context.Context, namespace string) (bool, error)

// DefaultNamespaceLabels are the labels that name a series' namespace: the exporter's own, and what
// Prometheus renames it to when the target has one too (honor_labels: false); the flag's default.
var DefaultNamespaceLabels = config.DefaultTenancyNamespaceLabels

// ErrNothingVisible: no series of the exposition is visible to the caller; nothing was written (→ 403).
var ErrNothingVisible = errors.New("no series of the exposition is visible to the caller")

// Serve filters the upstream response res (its Content-Type decides the parser; Content-Encoding gzip is
// decoded) into w, re-encoding with gzip when acceptEncoding allows it. It writes the status and headers
// only once the first visible family is known (so ErrNothingVisible leaves w untouched); a content type
// that is not text 0.0.4 / OpenMetrics returns an error before writing (the caller answers 403/502). An
// error after headers were written is returned too; the caller then aborts the response
// (panic(http.ErrAbortHandler)) so the client sees a failed scrape, never a silently partial one.
//
// A series is visible when one or more of the labels named in labels is set on it and each of them
// that is set names a namespace allow says yes to; allow is asked once per namespace and call.
// Serve sets Content-Type (the upstream's), Content-Encoding and Vary on w, removes Content-Length,
// and leaves every other header to the caller. It does not close res.Body.
func Serve(ctx context.Context, w http.ResponseWriter, res *http.Response, acceptEncoding string, labelNames []string, allow Allow) error {
	return serve(ctx, w, res, acceptEncoding, labelNames, allow, chunkSize)
}

// serve is Serve parsing chunks of about size bytes.
func serve(ctx context.Context, w http.ResponseWriter, res *http.Response, acceptEncoding string, labelNames []string, allow Allow, size int) error {
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("the upstream answered %d, not 200", res.StatusCode)
	}
	contentType := res.Header.Get("Content-Type")
	f, err := formatOf(contentType)
	if err != nil {
		return err
	}
	body, err := decoded(res)
	if err != nil {
		return err
	}
	defer body.Close()

	gz := acceptsGzip(acceptEncoding)
	var (
		started bool
		zw      *gzip.Writer
	)
	flt := &filter{
		ctx:    ctx,
		format: f,
		vis:    newVisibility(labelNames, allow),
		size:   size,
		st:     labels.NewSymbolTable(),
		out: func() (io.Writer, error) {
			h := w.Header()
			h.Set("Content-Type", contentType)
			h.Del("Content-Length")
			h.Add("Vary", "Accept-Encoding")
			var dst io.Writer = w
			if gz {
				h.Set("Content-Encoding", "gzip")
				zw = gzipWriters.Get().(*gzip.Writer)
				zw.Reset(w)
				dst = zw
			} else {
				h.Del("Content-Encoding")
			}
			w.WriteHeader(http.StatusOK)
			started = true
			return dst, nil
		},
	}
	err = flt.run(body)
	if zw != nil {
		defer gzipWriters.Put(zw)
	}
	if err != nil {
		return err
	}
	if !started {
		return ErrNothingVisible
	}
	if zw != nil {
		return zw.Close()
	}
	return nil
}

// gzipWriters keeps gzip writers between scrapes: each holds some hundred
// kilobytes of compressor state.
var gzipWriters = sync.Pool{New: func() any {
	// BestSpeed: the exposition is small, and the CPU is the node's.
	zw, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed)
	return zw
}}

// formatOf is the grammar a Content-Type names: text/plain (version 0.0.4, 1.0.0 or none, which
// Prometheus reads as text too) or application/openmetrics-text (0.0.1, 1.0.0 or none). Anything
// else is refused: protobuf is never asked for (UpstreamAccept), and a format the filter cannot
// read is not passed through.
func formatOf(contentType string) (format, error) {
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return 0, fmt.Errorf("the upstream's Content-Type %q: %w", contentType, err)
	}
	v := params["version"]
	switch {
	case mediaType == "text/plain" && (v == "" || v == "0.0.4" || v == "1.0.0"):
		return formatText, nil
	case mediaType == "application/openmetrics-text" && (v == "" || v == "0.0.1" || v == "1.0.0"):
		return formatOpenMetrics, nil
	}
	return 0, fmt.Errorf("the upstream's Content-Type %q is neither text 0.0.4 nor OpenMetrics 1.0", contentType)
}

// decoded is res's body without its Content-Encoding: none, identity or gzip.
func decoded(res *http.Response) (io.ReadCloser, error) {
	switch enc := strings.ToLower(strings.TrimSpace(res.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
		return io.NopCloser(res.Body), nil
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(res.Body)
		if err != nil {
			return nil, fmt.Errorf("decoding the upstream's gzip: %w", err)
		}
		return zr, nil
	default:
		return nil, fmt.Errorf("the upstream's Content-Encoding %q is not gzip", enc)
	}
}
