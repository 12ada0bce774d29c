package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/go-logr/logr"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
	"github.com/rbac-proxy/rbac-proxy/proxy/review"
)

// Options are the collaborators of a Server that do not come from flags.
type Options struct {
	Logger logr.Logger
	// Clients replaces the API server clients; nil builds them from
	// Config.KubeAPI, and only when a TokenReview or SAR can be needed.
	Clients *review.Clients
}

// Server is a runnable rbac-proxy.
type Server struct {
	cfg      *config.Config
	log      logr.Logger
	metrics  *metrics
	reloader *reloader
	handler  http.Handler
	tlsConf  *tls.Config

	ready   atomic.Bool
	started bool
	servers []*listener
}

// New wires a Server from a validated configuration. Files are loaded and
// checked here, so that a bad certificate fails at start, naming its flag.
func New(cfg *config.Config, opts Options) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	lg := opts.Logger
	if lg.GetSink() == nil {
		lg = logr.Discard()
	}
	s := &Server{cfg: cfg, log: lg, metrics: newMetrics()}
	s.reloader = &reloader{interval: cfg.TLS.ReloadInterval, log: lg.WithName("reload"), metrics: s.metrics}

	// Serving certificate and client CA.
	serving := &servingCert{}
	if cfg.TLS.CertFile != "" {
		s.reloader.files = append(s.reloader.files, serving.watch(cfg.TLS.CertFile, cfg.TLS.KeyFile))
	} else if cfg.Listen.SecureAddress != "" {
		host, _ := os.Hostname()
		if err := serving.selfSigned(host); err != nil {
			return nil, err
		}
	}
	var ca *clientCA
	if cfg.TLS.ClientCAFile != "" {
		ca = &clientCA{}
		s.reloader.files = append(s.reloader.files, ca.watch(cfg.TLS.ClientCAFile))
	}
	if err := s.reloader.loadAll(); err != nil {
		return nil, err
	}
	s.tlsConf = &tls.Config{
		MinVersion:     cfg.TLS.MinVersion,
		CipherSuites:   servingCipherSuites(cfg.TLS.CipherSuites),
		GetCertificate: serving.getCertificate,
	}
	if ca != nil {
		// Any certificate is requested; it is verified per request against
		// the current CA, so an untrusted one gets a 401, not a failed
		// handshake, and a rotated CA applies at once.
		s.tlsConf.ClientAuth = tls.RequestClientCert
	}

	// Identity and decision.
	ro := review.Options{Clients: opts.Clients, Metrics: s.metrics.registry, Logger: lg}
	if ca != nil {
		ro.ClientCA = ca.pool.Load
	}
	authn, authz, tenants, err := review.New(cfg, ro)
	if err != nil {
		return nil, err
	}
	attrs, err := review.NewAttributes(cfg.Authorization)
	if err != nil {
		return nil, err
	}

	// Upstream.
	transport, err := newUpstreamTransport(cfg.Upstream, s.reloader)
	if err != nil {
		return nil, err
	}
	upstream := newUpstreamHandler(cfg.Upstream, timedTransport{next: transport, m: s.metrics}, s.metrics, lg.WithName("upstream"))

	h := &proxyHandler{
		paths:    cfg.Paths,
		headers:  newHeaderPolicy(cfg.Authentication.Header),
		upgrades: newUpgradePolicy(cfg.Upstream.AllowedUpgrades),
		authn:    authn,
		attrs:    attrs,
		authz:    authz,
		upstream: upstream,
		metrics:  s.metrics,
		log:      lg.WithName("request"),
	}
	if tenants != nil {
		h.tenants = &tenantPath{upstream: upstream, tenants: tenants, labels: cfg.Authorization.Tenancy.NamespaceLabels, metrics: s.metrics, log: lg.WithName("tenant")}
	}
	s.handler = h
	return s, nil
}

// Handler is the proxy's request handler (without TLS), for tests.
func (s *Server) Handler() http.Handler { return s.handler }

// Addr returns the bound address of a listener: "proxy", "endpoints" or
// "insecure"; empty before Start or when not configured.
func (s *Server) Addr(name string) string {
	for _, l := range s.servers {
		if l.name == name {
			return l.ln.Addr().String()
		}
	}
	return ""
}

// Run serves until ctx ends, then stops accepting, marks itself not ready
// and lets in-flight requests finish within the shutdown grace period.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Start(); err != nil {
		return err
	}
	reloadCtx, stopReload := context.WithCancel(ctx)
	defer stopReload()
	go s.reloader.run(reloadCtx)

	errs := make(chan error, len(s.servers))
	for _, l := range s.servers {
		s.log.Info("listening", "server", l.name, "address", l.ln.Addr().String(), "tls", l.tls)
		go func(l *listener) {
			err := l.srv.Serve(l.ln)
			if !errors.Is(err, http.ErrServerClosed) {
				errs <- fmt.Errorf("serving %s on %s: %w", l.name, l.ln.Addr(), err)
			}
		}(l)
	}
	s.ready.Store(true)

	var serveErr error
	select {
	case <-ctx.Done():
		s.log.Info("shutting down: draining in-flight requests", "gracePeriod", s.cfg.Limits.ShutdownGracePeriod.String())
	case serveErr = <-errs:
	}
	s.ready.Store(false)
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.Limits.ShutdownGracePeriod)
	defer cancel()
	var wg sync.WaitGroup
	for _, l := range s.servers {
		wg.Add(1)
		go func(l *listener) {
			defer wg.Done()
			if err := l.srv.Shutdown(shutdownCtx); err != nil {
				s.log.Info("grace period over: closing remaining connections", "server", l.name)
				_ = l.srv.Close()
			}
		}(l)
	}
	wg.Wait()
	return serveErr
}

// logWriter sends net/http's own error log (TLS handshake errors, etc.) to
// the logger at verbosity 1.
type logWriter struct{ log logr.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.log.V(1).Info(strings.TrimSpace(string(p)))
	return len(p), nil
}
