package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// The scrape fast path. A small metrics exposition is read whole before its
// response starts (prefetch), answered with a Content-Length instead of a
// chunked stream flushed piece by piece, and its TLS records are sent in one
// write (cork). Most scrapes (a DCGM exporter on an 8-GPU node sends tens of
// kilobytes, less when gzipped) take this path; the upstream step decides it
// per response (exchange.respond) and ends it (exchange.finish), the
// listener provides the cork beneath each TLS connection (tlsListener).

// prefetchLimit is how much of a metrics exposition is read before the
// response starts. Anything longer streams on after this prefix; nothing is
// held whole.
const prefetchLimit = 64 << 10

// corkLimit bounds what a corked connection holds: a prefetched exposition
// with its headers and TLS framing fits.
const corkLimit = prefetchLimit + 16<<10

var (
	prefetchBuffers = newBufferPool(prefetchLimit)
	corkBuffers     = newBufferPool(corkLimit)
	copyBuffers     = newBufferPool(32 << 10) // the ReverseProxy's
)

// prefetch completes a small metrics exposition before it is answered, and
// reports whether it is whole in memory now. Only expositions qualify: an
// exporter writes a scrape as fast as it can, so waiting for its end delays
// nothing a scraper would see, whereas other bodies of unknown length may be
// streams whose first bytes must not wait. An error reading the body is
// returned, so that the caller gets a 502 instead of a truncated scrape.
func prefetch(resp *http.Response) (whole bool, err error) {
	if resp.ContentLength != -1 || len(resp.Trailer) > 0 || resp.Request.Method == http.MethodHead ||
		!isExposition(resp.Header.Get("Content-Type")) {
		return false, nil
	}
	buf := prefetchBuffers.Get()
	n, err := readFull(resp.Body, buf)
	switch err {
	case io.EOF: // the whole body is in
		_ = resp.Body.Close()
		resp.Body = &prefetchedBody{Reader: bytes.NewReader(buf[:n]), buf: buf}
		resp.ContentLength = int64(n)
		resp.TransferEncoding = nil
		resp.Header.Set("Content-Length", strconv.Itoa(n))
		return true, nil
	case nil: // longer than the limit: the prefix, then the rest as it comes
		resp.Body = &prefetchedBody{Reader: io.MultiReader(bytes.NewReader(buf), resp.Body), rest: resp.Body, buf: buf}
		return false, nil
	default:
		prefetchBuffers.Put(buf)
		_ = resp.Body.Close()
		return false, err
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
	rest   io.Closer
	buf    []byte
	closed bool // the ReverseProxy closes a body more than once, from one goroutine
}

func (b *prefetchedBody) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	prefetchBuffers.Put(b.buf)
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

// corkConn sits under a client's TLS connection. While corked it gathers
// the TLS records of a response that is already whole in memory and sends
// them in one write when uncorked. crypto/tls writes each record (at most
// 16 KB) with its own syscall, so a 32 KB scrape took three; on virtualized
// hosts a syscall costs more than sealing the record. Only whole responses
// of HTTP/1 requests are corked: nothing a slow upstream sends is ever held,
// and no HTTP/2 stream holds back another's data.
type corkConn struct {
	net.Conn

	mu     sync.Mutex
	corked bool
	buf    []byte // from corkBuffers while corked
	err    error
}

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if !c.corked {
		return c.Conn.Write(p)
	}
	if len(c.buf)+len(p) > cap(c.buf) {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
		if len(p) > cap(c.buf) {
			return c.Conn.Write(p)
		}
	}
	c.buf = append(c.buf, p...)
	return len(p), nil
}

// cork starts gathering writes.
func (c *corkConn) cork() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corked {
		return
	}
	c.corked = true
	c.buf = corkBuffers.Get()[:0]
}

// uncork sends what was gathered. A failed write closes the connection:
// the client cannot be left waiting for the rest of a response.
func (c *corkConn) uncork() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.corked {
		return
	}
	_ = c.flushLocked()
	c.stopLocked()
}

// discard drops what was gathered and uncorks: the request panicked, so
// net/http closes the connection and a part of an answer is no answer.
func (c *corkConn) discard() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corked {
		c.stopLocked()
	}
}

func (c *corkConn) stopLocked() {
	c.corked = false
	corkBuffers.Put(c.buf)
	c.buf = nil
}

func (c *corkConn) flushLocked() error {
	if len(c.buf) == 0 || c.err != nil {
		return c.err
	}
	_, err := c.Conn.Write(c.buf)
	c.buf = c.buf[:0]
	if err != nil {
		c.err = err
		_ = c.Conn.Close()
	}
	return err
}

// tlsListener accepts TLS connections, each over a corkConn.
type tlsListener struct {
	net.Listener
	config *tls.Config
}

func (l tlsListener) Accept() (net.Conn, error) {
	raw, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return tls.Server(&corkConn{Conn: raw}, l.config), nil
}

type corkKey struct{}

// withCork gives the requests of a connection from a tlsListener its
// corkConn (the http.Server's ConnContext, see connContext).
func withCork(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		if cc, ok := tc.NetConn().(*corkConn); ok {
			return context.WithValue(ctx, corkKey{}, cc)
		}
	}
	return ctx
}

// corkFor is the corkConn under an HTTP/1 request's connection; nil for
// HTTP/2, plain HTTP and the tests' in-process requests.
func corkFor(r *http.Request) *corkConn {
	if r.ProtoMajor != 1 {
		return nil
	}
	cc, _ := r.Context().Value(corkKey{}).(*corkConn)
	return cc
}

// bufferPool recycles byte buffers of one size.
type bufferPool struct {
	size int
	p    sync.Pool
}

func newBufferPool(size int) *bufferPool {
	b := &bufferPool{size: size}
	b.p.New = func() any { v := make([]byte, size); return &v }
	return b
}

// Get returns a buffer of the pool's size.
func (b *bufferPool) Get() []byte { return *(b.p.Get().(*[]byte)) }

// Put takes back a buffer from Get, whatever its length now.
func (b *bufferPool) Put(v []byte) {
	v = v[:cap(v)]
	b.p.Put(&v)
}
