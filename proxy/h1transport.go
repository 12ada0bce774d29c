package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"
)

// maxResponseHead bounds the status line and headers of an upstream's
// response, 1xx replies included, as http.Transport's default does.
const maxResponseHead = 10 << 20

// h1Transport forwards scrapes (GET and HEAD without a body) to a plain
// HTTP/1 upstream over pooled connections that the calling goroutine writes
// and reads itself. http.Transport hands every request to a writer
// goroutine and every response back from a reader goroutine; on a sidecar
// that shares its node's cores with the exporter, those wake-ups cost more
// than the proxying. The wire format is still net/http's own: Request.Write
// and http.ReadResponse. Anything else (bodies, upgrades) goes to fallback.
type h1Transport struct {
	dial        func(ctx context.Context) (net.Conn, error)
	fallback    http.RoundTripper
	maxIdle     int
	idleTimeout time.Duration

	mu    sync.Mutex
	idle  []*h1Conn   // oldest first
	prune *time.Timer // closes what stays idle too long when no request comes
}

type h1Conn struct {
	net.Conn
	head      *headLimit // under br
	br        *bufio.Reader
	bw        *bufio.Writer
	idleSince time.Time
}

// headLimit counts what is read from the connection while a response head
// is, so an upstream streaming headers without end is cut off at
// maxResponseHead instead of growing the proxy's memory.
type headLimit struct {
	r       io.Reader
	left    int64
	limited bool
}

var errResponseHeadTooLarge = fmt.Errorf("the upstream's response head exceeds %d bytes", maxResponseHead)

func (l *headLimit) Read(p []byte) (int, error) {
	if !l.limited {
		return l.r.Read(p)
	}
	if l.left <= 0 {
		return 0, errResponseHeadTooLarge
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// errNothingRead marks an exchange that failed before any byte of a
// response. On a pooled connection that means the upstream had closed it
// while idle, so the scrape is sent again on a new one.
var errNothingRead = errors.New("no response from the upstream")

func (t *h1Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !scrapeShaped(req) {
		return t.fallback.RoundTrip(req)
	}
	for {
		c, reused, err := t.conn(req.Context())
		if err != nil {
			return nil, err
		}
		resp, err := t.exchange(c, req)
		if err == nil {
			return resp, nil
		}
		_ = c.Close()
		if !reused || !errors.Is(err, errNothingRead) || req.Context().Err() != nil {
			return nil, err
		}
	}
}

// scrapeShaped reports whether req can take the direct path. Request.Write
// does not check header names and values the way http.Transport does, so
// a request with one that is not valid on the wire goes to the fallback,
// which refuses it.
func scrapeShaped(req *http.Request) bool {
	if (req.Method != http.MethodGet && req.Method != http.MethodHead) ||
		(req.Body != nil && req.Body != http.NoBody) ||
		req.URL.Scheme != "http" || req.Header.Get("Upgrade") != "" {
		return false
	}
	for name, values := range req.Header {
		if !httpguts.ValidHeaderFieldName(name) {
			return false
		}
		for _, v := range values {
			if !httpguts.ValidHeaderFieldValue(v) {
				return false
			}
		}
	}
	return true
}

// exchange writes req on c and reads its response head. The body, when
// read to its end, gives c back to the pool.
func (t *h1Transport) exchange(c *h1Conn, req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	// A caller that goes away aborts the exchange wherever it blocks.
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	fail := func(err error) (*http.Response, error) {
		stop()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("forwarding to the upstream: %w", ctx.Err())
		}
		return nil, err
	}
	if err := req.Write(c.bw); err != nil {
		return fail(fmt.Errorf("%w: %w", errNothingRead, err))
	}
	if err := c.bw.Flush(); err != nil {
		return fail(fmt.Errorf("%w: %w", errNothingRead, err))
	}
	c.head.limited, c.head.left = true, maxResponseHead
	if _, err := c.br.Peek(1); err != nil {
		return fail(fmt.Errorf("%w: %w", errNothingRead, err))
	}
	resp, err := http.ReadResponse(c.br, req)
	// Interim responses (100 Continue, 103 Early Hints) are not forwarded.
	for err == nil && resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
		resp, err = http.ReadResponse(c.br, req)
	}
	c.head.limited = false
	if err != nil && c.head.left <= 0 {
		// The parser may have seen a line cut short rather than this error.
		return fail(errResponseHeadTooLarge)
	}
	if err != nil {
		return fail(fmt.Errorf("reading the upstream's response: %w", err))
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return fail(errors.New("the upstream switched protocols on a request that asked for no upgrade"))
	}
	b := &h1Body{body: resp.Body, ctx: ctx, c: c, t: t, stop: stop, reusable: !resp.Close}
	if resp.Body == http.NoBody {
		b.finish(true)
		return resp, nil
	}
	resp.Body = b
	return resp, nil
}

// h1Body is a response body that returns its connection to the pool once
// read to the end, and closes it when abandoned before.
type h1Body struct {
	body     io.ReadCloser
	ctx      context.Context
	c        *h1Conn
	t        *h1Transport
	stop     func() bool
	reusable bool
	done     bool
	err      error // what ended the body, returned again by later reads
}

func (b *h1Body) Read(p []byte) (int, error) {
	if b.done {
		if b.err == nil {
			return 0, errors.New("read on a closed upstream response body")
		}
		return 0, b.err
	}
	n, err := b.body.Read(p)
	if err != nil {
		b.finish(err == io.EOF)
		if err != io.EOF && b.ctx.Err() != nil {
			err = fmt.Errorf("reading the upstream's response: %w", b.ctx.Err())
		}
		b.err = err
	}
	return n, err
}

// Close does not drain what was not read: the connection is closed instead.
func (b *h1Body) Close() error {
	if !b.done {
		b.finish(false)
	}
	return nil
}

func (b *h1Body) finish(clean bool) {
	b.done = true
	// stop reports false when the caller's context already fired and set
	// the connection's deadline: such a connection is not reused.
	if b.stop() && clean && b.reusable && b.c.br.Buffered() == 0 {
		b.t.put(b.c)
		return
	}
	_ = b.c.Close()
}

// conn returns a pooled connection, newest first, on which nothing came
// while it was idle; or dials one.
func (t *h1Transport) conn(ctx context.Context) (*h1Conn, bool, error) {
	for {
		t.mu.Lock()
		n := len(t.idle)
		if n == 0 {
			t.mu.Unlock()
			break
		}
		c := t.idle[n-1]
		t.idle[n-1] = nil
		t.idle = t.idle[:n-1]
		t.mu.Unlock()
		if quietSinceIdle(c.Conn) {
			return c, true, nil
		}
		_ = c.Close()
	}
	nc, err := t.dial(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("connecting to the upstream: %w", err)
	}
	head := &headLimit{r: nc}
	return &h1Conn{Conn: nc, head: head, br: bufio.NewReaderSize(head, prefetchLimit), bw: bufio.NewWriterSize(nc, 4<<10)}, false, nil
}

// put pools c, unless maxIdle are pooled already.
func (t *h1Transport) put(c *h1Conn) {
	c.idleSince = time.Now()
	t.mu.Lock()
	expired := t.expiredLocked(c.idleSince)
	if len(t.idle) < t.maxIdle {
		t.idle = append(t.idle, c)
		c = nil
		if t.prune == nil {
			t.prune = time.AfterFunc(t.idleTimeout, t.closeExpired)
		}
	}
	t.mu.Unlock()
	closeAll(expired)
	if c != nil {
		_ = c.Close()
	}
}

// closeExpired runs while connections are pooled: it closes those idle
// for longer than idleTimeout, and comes back when the oldest left would.
func (t *h1Transport) closeExpired() {
	now := time.Now()
	t.mu.Lock()
	expired := t.expiredLocked(now)
	if len(t.idle) > 0 {
		t.prune.Reset(t.idleTimeout - now.Sub(t.idle[0].idleSince))
	} else {
		t.prune = nil
	}
	t.mu.Unlock()
	closeAll(expired)
}

// expiredLocked takes the connections idle since before now-idleTimeout
// out of the pool.
func (t *h1Transport) expiredLocked(now time.Time) []*h1Conn {
	n := 0
	for n < len(t.idle) && now.Sub(t.idle[n].idleSince) >= t.idleTimeout {
		n++
	}
	if n == 0 {
		return nil
	}
	expired := slices.Clone(t.idle[:n])
	t.idle = slices.Delete(t.idle, 0, n)
	return expired
}

func closeAll(conns []*h1Conn) {
	for _, c := range conns {
		_ = c.Close()
	}
}

// CloseIdleConnections closes the pooled connections, and the fallback's.
func (t *h1Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	closeAll(idle)
	if ci, ok := t.fallback.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}
