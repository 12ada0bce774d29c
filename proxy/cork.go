package proxy

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
)

// corkLimit bounds what a corked connection holds: a prefetched exposition
// (prefetchLimit) with its headers and TLS framing fits.
const corkLimit = prefetchLimit + 16<<10

// corkConn sits under a client's TLS connection. While corked it gathers
// the TLS records of a response that is already whole in memory and sends
// them in one write when uncorked. crypto/tls writes each record (at most
// 16 KB) with its own syscall, so a 32 KB scrape took three; on virtualized
// hosts a syscall costs more than sealing the record. Only prefetched
// responses are corked, so nothing a slow upstream sends is ever held.
type corkConn struct {
	net.Conn
	tls *tls.Conn // the connection above, to tell HTTP/2 apart

	buffers *bufferPool // of corkLimit bytes

	mu     sync.Mutex
	corked bool
	buf    []byte
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

// cork starts gathering writes. HTTP/2 connections are never corked: their
// streams share the connection, and one stream must not hold another's data.
func (c *corkConn) cork() {
	if c.tls != nil && c.tls.ConnectionState().NegotiatedProtocol == "h2" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corked {
		return
	}
	c.corked = true
	c.buf = c.buffers.Get()[:0]
}

func (c *corkConn) isCorked() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.corked
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
	c.corked = false
	c.buffers.Put(c.buf)
	c.buf = nil
}

// discard drops what was gathered and uncorks: the request panicked, so
// net/http closes the connection and a part of an answer is no answer.
func (c *corkConn) discard() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.corked {
		return
	}
	c.corked = false
	c.buffers.Put(c.buf)
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

// corkListener accepts TLS connections with a corkConn beneath each.
type corkListener struct {
	net.Listener
	config  *tls.Config
	buffers *bufferPool // of corkLimit bytes, shared by its connections
}

func (l corkListener) Accept() (net.Conn, error) {
	raw, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	cc := &corkConn{Conn: raw, buffers: l.buffers}
	cc.tls = tls.Server(cc, l.config)
	return cc.tls, nil
}

type corkKey struct{}

// withCork is the http.Server's ConnContext: requests find their
// connection's corkConn in their context.
func withCork(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		if cc, ok := tc.NetConn().(*corkConn); ok {
			return context.WithValue(ctx, corkKey{}, cc)
		}
	}
	return ctx
}

func corkFrom(ctx context.Context) *corkConn {
	cc, _ := ctx.Value(corkKey{}).(*corkConn)
	return cc
}
