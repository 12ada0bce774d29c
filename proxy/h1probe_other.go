//go:build !unix

package proxy

import "net"

// quietSinceIdle cannot peek without blocking here, so pooled connections
// are never trusted and every scrape dials anew.
func quietSinceIdle(net.Conn) bool { return false }
