package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// endpointsMaxConnections bounds the endpoints port on its own, so that a
// flood of either port leaves the other's slots alone: the kubelet's probes
// (a new connection each) and one scraper of the proxy's metrics need few.
const endpointsMaxConnections = 64

// connGuard keeps a client that is refused, or that sends a body slowly,
// from holding its connection.
//
// A refused request (any status of 400 and above that the proxy answers
// itself, before the upstream is contacted: 400, 401, 403, 404, 405...) is
// answered at once with "Connection: close", and what is left of its body is
// never read. Without this, net/http reads up to 256 KiB of an unread body
// before it writes the answer (and again when it closes the body, to reuse
// the connection): a client that declares Content-Length: 100000 and sends a
// byte a second never got its 401, and held the connection for a day.
// "Connection: close" skips the first read; a read deadline already passed
// makes the second return at once (HTTP/1 only: HTTP/2 never reads an
// abandoned body, and a past deadline there would reset the stream before
// its answer is sent). net/http's own 431 for oversized headers already
// closes without reading.
//
// A body that is read (forwarded to the upstream) must arrive within
// bodyTimeout of the end of the headers, else the read fails and the request
// is cut. The deadline is lifted when the body ends, so that it cannot cut a
// long response: net/http's background read, which starts at the end of the
// body, would cancel the request when it fired (which is why
// http.Server.ReadTimeout is not used).
type connGuard struct {
	next        http.Handler
	bodyTimeout time.Duration
}

func (g connGuard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	startedRequest(r.Context())
	gw := &guardWriter{ResponseWriter: w, h1: r.ProtoMajor == 1}
	var db *deadlineBody
	if r.Body != nil && r.Body != http.NoBody {
		rc := http.NewResponseController(w)
		if rc.SetReadDeadline(time.Now().Add(g.bodyTimeout)) == nil {
			db = &deadlineBody{ReadCloser: r.Body, rc: rc}
			r.Body = db
		}
	}
	if db != nil {
		// Deferred: after a panic in the handler the Transport's writer goroutine may still read
		// the body, and must not set a deadline on a ResponseWriter whose handler is gone.
		defer db.handlerDone()
	}
	g.next.ServeHTTP(gw, r)
	if gw.refused && gw.h1 && r.Body != http.NoBody {
		// The answer is buffered and goes out when we return; then net/http
		// closes the body, which would read what is left of it.
		_ = http.NewResponseController(w).SetReadDeadline(time.Unix(1, 0))
	}
}

// guardWriter notes whether the proxy refused the request itself.
type guardWriter struct {
	http.ResponseWriter
	h1        bool
	forwarded bool // the upstream was contacted: its status is not a refusal
	refused   bool
}

func (g *guardWriter) WriteHeader(code int) {
	if code >= 400 && !g.forwarded && !g.refused {
		g.refused = true
		// h1: no read of the body before the answer, and no keep-alive.
		// h2: a graceful GOAWAY once the connection's streams are done.
		g.Header().Set("Connection", "close")
	}
	g.ResponseWriter.WriteHeader(code)
}

func (g *guardWriter) Unwrap() http.ResponseWriter { return g.ResponseWriter }

// setForwarded notes on w that the upstream is contacted: from then on,
// error statuses are the upstream's answers, not refusals.
func setForwarded(w http.ResponseWriter) {
	for rw := w; rw != nil; {
		if g, ok := rw.(*guardWriter); ok {
			g.forwarded = true
			return
		}
		u, ok := rw.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return
		}
		rw = u.Unwrap()
	}
}

// deadlineBody lifts the body's read deadline when the body has been read
// to its end. Reads may come from another goroutine (the upstream
// transport's), even after the handler returned; from then on the
// connection belongs to the next request, whose deadlines must not be
// touched (and an HTTP/2 stream's writer is gone), hence the lock.
//
// Once at its end, the body stays there: the HTTP/1 server closes a request
// body when the response starts, and http.Transport, having copied the
// Content-Length, reads once more to check that nothing follows. When that
// read comes after the close, "invalid Read on closed Body" would make the
// Transport close the upstream connection and cut the response
// (golang/go#40747).
type deadlineBody struct {
	io.ReadCloser
	rc  *http.ResponseController
	eof bool // only the reader's goroutine touches it

	mu   sync.Mutex
	done bool // the handler returned, or the deadline was lifted
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	if b.eof {
		return 0, io.EOF
	}
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.eof = true
		b.mu.Lock()
		if !b.done {
			b.done = true
			_ = b.rc.SetReadDeadline(time.Time{})
		}
		b.mu.Unlock()
	}
	return n, err
}

func (b *deadlineBody) handlerDone() {
	b.mu.Lock()
	b.done = true
	b.mu.Unlock()
}

// closeIfNoRequest closes c unless it starts a request within timeout of
// being accepted. --read-header-timeout bounds HTTP/1's wait for a request,
// but an HTTP/2 connection that sent only its preface waits for
// --idle-timeout: a few such connections a second would hold every
// --max-connections slot. (net/http's ConnState cannot tell: HTTP/2 reports
// a connection active once its preface is read.) The timer starts in
// ConnContext, and the connection's first request, on any protocol, stops
// it (startedRequest).
func closeIfNoRequest(ctx context.Context, c net.Conn, timeout time.Duration) context.Context {
	if timeout <= 0 {
		return ctx
	}
	t := time.AfterFunc(timeout, func() { _ = c.Close() })
	return context.WithValue(ctx, firstRequestKey{}, t)
}

type firstRequestKey struct{}

// startedRequest stops the deadline of the request's connection.
func startedRequest(ctx context.Context) {
	if t, ok := ctx.Value(firstRequestKey{}).(*time.Timer); ok {
		t.Stop()
	}
}
