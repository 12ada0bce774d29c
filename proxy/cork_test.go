package proxy

import (
	"errors"
	"net"
	"sync"
	"testing"
)

// countingConn records each write that reaches the socket.
type countingConn struct {
	net.Conn
	mu     sync.Mutex
	writes [][]byte
	fail   error
	closed bool
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return 0, c.fail
	}
	c.writes = append(c.writes, append([]byte(nil), p...))
	return len(p), nil
}

func (c *countingConn) Close() error { c.closed = true; return nil }

func TestCorkConn(t *testing.T) {
	t.Run("uncorked writes go straight through", func(t *testing.T) {
		raw := &countingConn{}
		cc := &corkConn{Conn: raw, buffers: newBufferPool(corkLimit)}
		for _, p := range []string{"a", "bb"} {
			if n, err := cc.Write([]byte(p)); n != len(p) || err != nil {
				t.Fatalf("Write %q = %d, %v", p, n, err)
			}
		}
		if len(raw.writes) != 2 {
			t.Fatalf("%d writes reached the socket, want 2", len(raw.writes))
		}
	})

	t.Run("corked records leave in one write", func(t *testing.T) {
		raw := &countingConn{}
		cc := &corkConn{Conn: raw, buffers: newBufferPool(corkLimit)}
		cc.cork()
		for _, p := range []string{"header", "record-1", "record-2"} {
			if n, err := cc.Write([]byte(p)); n != len(p) || err != nil {
				t.Fatalf("Write %q = %d, %v", p, n, err)
			}
		}
		if len(raw.writes) != 0 || !cc.isCorked() {
			t.Fatalf("%d writes reached the socket while corked", len(raw.writes))
		}
		cc.uncork()
		if len(raw.writes) != 1 || string(raw.writes[0]) != "headerrecord-1record-2" {
			t.Fatalf("after uncork the socket got %q, want one write of everything", raw.writes)
		}
		if _, _ = cc.Write([]byte("next")); len(raw.writes) != 2 || cc.isCorked() {
			t.Fatalf("uncorked connection still gathers writes: %q", raw.writes)
		}
	})

	t.Run("a corked connection never holds more than its limit", func(t *testing.T) {
		raw := &countingConn{}
		cc := &corkConn{Conn: raw, buffers: newBufferPool(corkLimit)}
		cc.cork()
		big := make([]byte, corkLimit-10)
		_, _ = cc.Write(big)
		_, _ = cc.Write(make([]byte, 20)) // would overflow: what was gathered goes first
		if len(raw.writes) != 1 || len(raw.writes[0]) != len(big) {
			t.Fatalf("socket got %d writes, want the gathered %d bytes flushed", len(raw.writes), len(big))
		}
		_, _ = cc.Write(make([]byte, corkLimit+1)) // larger than the buffer: straight through
		if len(raw.writes) != 3 {
			t.Fatalf("socket got %d writes, want 3", len(raw.writes))
		}
		cc.uncork()
	})

	t.Run("a failed flush closes the connection", func(t *testing.T) {
		raw := &countingConn{fail: errors.New("broken pipe")}
		cc := &corkConn{Conn: raw, buffers: newBufferPool(corkLimit)}
		cc.cork()
		_, _ = cc.Write([]byte("response"))
		cc.uncork()
		if !raw.closed {
			t.Fatal("the connection stayed open after its response was lost")
		}
		if _, err := cc.Write([]byte("more")); err == nil {
			t.Fatal("a write after a failed flush succeeded")
		}
	})
}
