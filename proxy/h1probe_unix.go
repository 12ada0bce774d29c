//go:build unix

package proxy

import (
	"errors"
	"net"
	"syscall"
)

// quietSinceIdle reports whether nothing has arrived on a pooled
// connection since its last response: no bytes and no close. An upstream
// may send while a connection sits idle (a 408 before it gives up, a body
// it should not have sent after a HEAD or 204); read as the next request's
// response, those would reach another caller. http.Transport notices them
// with a reader goroutine per connection; one non-blocking peek before
// reuse costs a syscall instead of two goroutine wake-ups per request.
func quietSinceIdle(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var buf [1]byte
	quiet := false
	err = raw.Read(func(fd uintptr) bool {
		// The net package's sockets are non-blocking, so MSG_PEEK alone
		// never waits (and MSG_DONTWAIT is missing on some unix ports).
		_, _, rerr := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK)
		quiet = errors.Is(rerr, syscall.EAGAIN)
		return true // never wait: an answer either way is the answer
	})
	return err == nil && quiet
}
