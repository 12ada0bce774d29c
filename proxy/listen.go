package proxy

import (
	"context"
	"fmt"
	"log"
	"math"
	"net"
	"net/http"
	"strconv"

	"golang.org/x/net/netutil"
)

// listener is one of the proxy's ports: proxy, endpoints or insecure.
type listener struct {
	name string
	srv  *http.Server
	ln   net.Listener
	tls  bool
}

// Start binds the listeners. Run calls it when it was not called before.
func (s *Server) Start() error {
	if s.started {
		return nil
	}
	cfg := s.cfg
	var err error
	if cfg.Listen.SecureAddress != "" {
		err = s.listen("proxy", cfg.Listen.SecureAddress, s.handler, true, cfg.Limits.MaxConnections)
		if err == nil && cfg.Listen.ProxyEndpointsPort != 0 {
			host, _, _ := net.SplitHostPort(cfg.Listen.SecureAddress)
			addr := net.JoinHostPort(host, strconv.Itoa(cfg.Listen.ProxyEndpointsPort))
			err = s.listen("endpoints", addr, s.endpoints(), true, endpointsMaxConnections)
		}
	}
	if err == nil && cfg.Listen.InsecureAddress != "" {
		err = s.listen("insecure", cfg.Listen.InsecureAddress, s.handler, false, cfg.Limits.MaxConnections)
	}
	if err != nil {
		for _, l := range s.servers {
			_ = l.ln.Close()
		}
		s.servers = nil
		return err
	}
	s.started = true
	return nil
}

// listen binds addr and prepares its server: at most maxConns connections,
// TLS (with a corkConn beneath each connection, see fastpath.go) or plain
// HTTP with h2c, and every request through connGuard before h.
func (s *Server) listen(name, addr string, h http.Handler, useTLS bool, maxConns int) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s for the %s server: %w", addr, name, err)
	}
	// Beyond maxConns, a connection waits in the kernel's accept queue (not
	// accepted, so it costs the proxy nothing) until one closes: established
	// keep-alive connections are served on, and a newcomer is delayed rather
	// than refused while hostile idle connections run into
	// --read-header-timeout.
	ln = netutil.LimitListener(ln, maxConns)
	srv := s.newHTTPServer(connGuard{next: h, bodyTimeout: s.cfg.Limits.RequestBodyTimeout}, !useTLS)
	srv.ConnState = s.metrics.connState(name)
	srv.ConnContext = s.connContext
	if useTLS {
		// Served from our own TLS listener, so the protocols ServeTLS would
		// offer are set here.
		srv.TLSConfig = s.tlsConf.Clone()
		srv.TLSConfig.NextProtos = []string{"http/1.1"}
		if !s.cfg.HTTP2.Disable {
			srv.TLSConfig.NextProtos = []string{"h2", "http/1.1"}
		}
		ln = tlsListener{Listener: ln, config: srv.TLSConfig}
	}
	s.servers = append(s.servers, &listener{name: name, srv: srv, ln: ln, tls: useTLS})
	return nil
}

func (s *Server) newHTTPServer(h http.Handler, unencryptedH2 bool) *http.Server {
	cfg := s.cfg
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cfg.Limits.ReadHeaderTimeout,
		IdleTimeout:       cfg.Limits.IdleTimeout,
		MaxHeaderBytes:    cfg.Limits.MaxHeaderBytes,
		ErrorLog:          log.New(logWriter{s.log.WithName("http")}, "", 0),
		Protocols:         new(http.Protocols),
	}
	srv.Protocols.SetHTTP1(true)
	if !cfg.HTTP2.Disable {
		srv.Protocols.SetHTTP2(true)
		srv.Protocols.SetUnencryptedHTTP2(unencryptedH2)
		perConn := int64(cfg.HTTP2.MaxSize) * int64(cfg.HTTP2.MaxConcurrentStreams)
		srv.HTTP2 = &http.HTTP2Config{
			MaxConcurrentStreams:          int(cfg.HTTP2.MaxConcurrentStreams),
			MaxReadFrameSize:              int(cfg.HTTP2.MaxSize),
			MaxReceiveBufferPerStream:     int(cfg.HTTP2.MaxSize),
			MaxReceiveBufferPerConnection: int(min(perConn, math.MaxInt32)),
		}
	}
	return srv
}

// connContext is the servers' ConnContext: the requests of a connection
// find its corkConn in their context, and a connection that starts no
// request is closed.
func (s *Server) connContext(ctx context.Context, c net.Conn) context.Context {
	return closeIfNoRequest(withCork(ctx, c), c, s.cfg.Limits.ReadHeaderTimeout)
}
