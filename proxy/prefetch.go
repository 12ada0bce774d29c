package proxy

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// prefetchLimit is how much of a metrics exposition is read before the
// response starts. Most scrapes (a DCGM exporter on an 8-GPU node sends
// tens of kilobytes, less when gzipped) fit, so they are answered with a
// Content-Length in a few full TLS records instead of a chunked stream
// flushed piece by piece: fewer records, fewer syscalls, no flush timer.
// Anything longer streams on after this prefix; nothing is held whole.
const prefetchLimit = 64 << 10

// prefetcher completes small metrics expositions before they are answered.
// Only expositions qualify: an exporter writes a scrape as fast as it can,
// so waiting for its end delays nothing a scraper would see, whereas other
// bodies of unknown length may be streams whose first bytes must not wait.
type prefetcher struct{ buffers *bufferPool }

func newPrefetcher() *prefetcher { return &prefetcher{buffers: newBufferPool(prefetchLimit)} }

// modifyResponse is the ReverseProxy's ModifyResponse hook. An error reading
// the body is returned, so the caller gets a 502 instead of a truncated scrape.
func (p *prefetcher) modifyResponse(resp *http.Response) error {
	if resp.ContentLength != -1 || len(resp.Trailer) > 0 || resp.Request.Method == http.MethodHead ||
		!isExposition(resp.Header.Get("Content-Type")) {
		return nil
	}
	buf := p.buffers.Get()
	n, err := readFull(resp.Body, buf)
	switch err {
	case io.EOF: // the whole body is in
		_ = resp.Body.Close()
		resp.Body = &prefetchedBody{Reader: bytes.NewReader(buf[:n]), buf: buf, buffers: p.buffers}
		resp.ContentLength = int64(n)
		resp.TransferEncoding = nil
		resp.Header.Set("Content-Length", strconv.Itoa(n))
		if cc := corkFrom(resp.Request.Context()); cc != nil {
			cc.cork() // the whole answer is in memory: send it in one write
		}
		return nil
	case nil: // longer than the limit: the prefix, then the rest as it comes
		resp.Body = &prefetchedBody{Reader: io.MultiReader(bytes.NewReader(buf), resp.Body), rest: resp.Body, buf: buf, buffers: p.buffers}
		return nil
	default:
		p.buffers.Put(buf)
		_ = resp.Body.Close()
		return err
	}
}

// readFull is io.ReadFull that tells a clean end (io.EOF) from a body that
// broke off (io.ErrUnexpectedEOF from the chunked reader, or any other error).
func readFull(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// prefetchedBody serves a prefetched prefix (and the rest, if any) and
// returns the buffer to the pool on Close.
type prefetchedBody struct {
	io.Reader
	rest    io.Closer
	buf     []byte
	buffers *bufferPool
	closed  bool // the ReverseProxy closes a body more than once, from one goroutine
}

func (b *prefetchedBody) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	b.buffers.Put(b.buf)
	if b.rest != nil {
		return b.rest.Close()
	}
	return nil
}

// isExposition reports whether a Content-Type is a Prometheus exposition:
// the text format (text/plain with a version parameter), OpenMetrics, or
// the protobuf format. A bare text/plain could be a log stream, so it is not.
func isExposition(contentType string) bool {
	media, params, _ := strings.Cut(contentType, ";")
	media = strings.TrimSpace(media)
	switch {
	case strings.EqualFold(media, "application/openmetrics-text"):
		return true
	case strings.EqualFold(media, "text/plain"):
		return hasParam(params, "version")
	case strings.EqualFold(media, "application/vnd.google.protobuf"):
		return hasParam(params, "proto")
	}
	return false
}

func hasParam(params, name string) bool {
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		key, _, _ := strings.Cut(p, "=")
		if strings.EqualFold(strings.TrimSpace(key), name) {
			return true
		}
	}
	return false
}
