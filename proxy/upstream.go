package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"math"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
)

// newUpstreamTransport builds the pooled transport to the upstream:
// http, https (with CA, client certificate), h2c, or a unix socket. The
// client certificate files are added to r and reloaded when they change.
func newUpstreamTransport(u config.UpstreamConfig, r *reloader) (http.RoundTripper, error) {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		DialContext:           dialer.DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		// The upstream is local: asking it to compress only costs CPU, and
		// the caller's own Accept-Encoding is forwarded as is.
		DisableCompression: true,
		ReadBufferSize:     64 * 1024, // a scrape in few reads
		ForceAttemptHTTP2:  true,
	}
	if u.URL.Scheme == "unix" {
		socket := u.URL.Path
		t.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "unix", socket)
		}
	}
	if u.URL.Scheme == "https" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: u.InsecureSkipVerify} //nolint:gosec // validated: loopback only
		if u.CAFile != "" {
			if err := verifyWithReloadedCA(tc, t, u, r); err != nil {
				return nil, err
			}
		}
		if u.ClientCertFile != "" {
			var current atomic.Pointer[tls.Certificate]
			files := &watchedFiles{
				name:  "upstream-client",
				paths: []string{u.ClientCertFile, u.ClientKeyFile},
				apply: func(c [][]byte) error {
					cert, err := tls.X509KeyPair(c[0], c[1])
					if err != nil {
						return fmt.Errorf("loading --upstream-client-cert-file %s and --upstream-client-key-file %s: %w", u.ClientCertFile, u.ClientKeyFile, err)
					}
					current.Store(&cert)
					// Pooled connections carry the old certificate; new ones take this.
					t.CloseIdleConnections()
					return nil
				},
			}
			if err := r.add(files); err != nil {
				return nil, err
			}
			tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				return current.Load(), nil
			}
		}
		t.TLSClientConfig = tc
	}
	if u.ForceH2C {
		p := new(http.Protocols)
		p.SetUnencryptedHTTP2(true)
		t.Protocols = p
		return t, nil
	}
	// Plain HTTP/1 over tcp or a unix socket, and https: net/http's
	// Transport, whose reader goroutine per connection notices what an
	// upstream sends on an idle connection. A hand-written client for plain
	// scrapes saved 7-9% of throughput (see docs/proxy.md) and was removed:
	// it is not worth a second HTTP/1 client on the security path.
	return t, nil
}

// verifyWithReloadedCA makes tc verify the upstream against --upstream-ca-file
// as last loaded. crypto/tls only verifies against a fixed RootCAs, so its own
// check is replaced by the same x509 verification (chain and the upstream's
// host name) against the current pool; a rotated CA applies to the next
// connection, and pooled ones are closed when the file changes.
func verifyWithReloadedCA(tc *tls.Config, t *http.Transport, u config.UpstreamConfig, r *reloader) error {
	var roots atomic.Pointer[x509.CertPool]
	files := &watchedFiles{
		name:  "upstream-ca",
		paths: []string{u.CAFile},
		apply: func(c [][]byte) error {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(c[0]) {
				return field.Invalid(field.NewPath("--upstream-ca-file"), u.CAFile, "must contain at least one PEM certificate")
			}
			roots.Store(pool)
			t.CloseIdleConnections()
			return nil
		},
	}
	if err := r.add(files); err != nil {
		return err
	}
	if u.InsecureSkipVerify {
		return nil
	}
	host := u.URL.Hostname()
	tc.InsecureSkipVerify = true //nolint:gosec // verified in VerifyConnection below
	tc.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("the upstream presented no certificate")
		}
		opts := x509.VerifyOptions{Roots: roots.Load(), DNSName: host, Intermediates: x509.NewCertPool()}
		for _, c := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(c)
		}
		if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
			return fmt.Errorf("verifying the upstream's certificate against --upstream-ca-file %s: %w", u.CAFile, err)
		}
		return nil
	}
	return nil
}

// newReverseProxy forwards to the upstream. The request path was already
// cleaned and checked; Rewrite forwards exactly that path. Responses stream:
// a metrics exposition is prefetched up to prefetchLimit, nothing else is
// buffered beyond the copy buffer, and responses of unknown length are
// flushed after every read from the upstream, as httputil.ReverseProxy
// does. Every exchange is bounded by its deadline (see upstreamHandler).
func newReverseProxy(u config.UpstreamConfig, transport http.RoundTripper, m *metrics, log logr.Logger) *upstreamHandler {
	scheme, host, base := u.URL.Scheme, u.URL.Host, u.URL.Path
	if scheme == "unix" {
		scheme, host, base = "http", "localhost", ""
	}
	prefetch := newPrefetcher()
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = scheme
			pr.Out.URL.Host = host
			pr.Out.URL.Path = joinUpstreamPath(base, pr.In.URL.Path)
			pr.Out.URL.RawPath = ""
			// Out.Host keeps the caller's Host header, as kube-rbac-proxy does.
			pr.SetXForwarded()
			setUpstreamIdentity(pr) // after hop-by-hop removal: Connection cannot take it away
		},
		Transport:  transport,
		BufferPool: newBufferPool(32 << 10),
		ModifyResponse: func(resp *http.Response) error {
			ctx := resp.Request.Context()
			timer, bounded := ctx.Value(deadlineKey{}).(*time.Timer)
			if resp.StatusCode == http.StatusSwitchingProtocols {
				// An upgraded connection lasts as long as both ends keep it:
				// the deadline bounded the wait for the switch, not the tunnel.
				if bounded {
					timer.Stop()
				}
				return nil
			}
			if bounded && resp.Body != http.NoBody {
				resp.Body = &boundedBody{ReadCloser: resp.Body, ctx: ctx}
			}
			return prefetch.modifyResponse(resp)
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			switch {
			case context.Cause(r.Context()) == errUpstreamTimeout:
				m.upstreamTimeouts.Inc()
				log.V(2).Info("upstream timed out", "path", r.URL.Path, "error", err.Error())
				http.Error(w, "Gateway Timeout", http.StatusGatewayTimeout)
			case r.Context().Err() != nil:
				// The client went away; nobody to answer.
				w.WriteHeader(499)
			default:
				log.Error(err, "upstream request failed", "path", r.URL.Path)
				http.Error(w, "Bad Gateway", http.StatusBadGateway)
			}
		},
		// What the ReverseProxy reports itself (a copy aborted because the
		// client or the upstream went away) goes to our log, at -v=2.
		ErrorLog: stdlog.New(logWriter{log.V(1)}, "", 0),
	}
	return &upstreamHandler{proxy: rp, timeout: u.Timeout, metrics: m}
}

// scrapeTimeoutHeader is the scrape timeout, in seconds, that Prometheus
// (and vmagent) send with every scrape.
const scrapeTimeoutHeader = "X-Prometheus-Scrape-Timeout-Seconds"

// errUpstreamTimeout is the cause of an exchange cancelled by its deadline,
// which tells it from a client that went away.
var errUpstreamTimeout = errors.New("the upstream exchange ran past its deadline")

// deadlineKey holds an exchange's deadline timer in its context, for the
// ReverseProxy's hooks.
type deadlineKey struct{}

// upstreamHandler bounds every upstream exchange, from the request to the
// last byte of the response: by the scrape timeout the scraper sent, else
// by timeout (--upstream-timeout; 0: no bound). A hung exporter then holds
// a scrape that long, not forever. The bound cancels the request's context,
// which both transports obey for the whole exchange: before the response
// starts it is a 504 Gateway Timeout, afterwards the response is aborted.
// A client that goes away cancels the same context, as before.
type upstreamHandler struct {
	proxy   *httputil.ReverseProxy
	timeout time.Duration
	metrics *metrics
}

func (h *upstreamHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d := exchangeTimeout(r.Header, h.timeout)
	if d <= 0 {
		h.proxy.ServeHTTP(w, r)
		return
	}
	ctx, cancel := context.WithCancelCause(r.Context())
	// The timer only cancels the context: nothing but this goroutine ever
	// touches the ResponseWriter.
	timer := time.AfterFunc(d, func() { cancel(errUpstreamTimeout) })
	defer func() {
		timer.Stop()
		// A response that had started when the deadline passed is aborted
		// with panic(http.ErrAbortHandler): count it, then let it go on.
		if p := recover(); p != nil {
			if context.Cause(ctx) == errUpstreamTimeout {
				h.metrics.upstreamTimeouts.Inc()
			}
			cancel(nil)
			panic(p)
		}
		cancel(nil)
	}()
	h.proxy.ServeHTTP(w, r.WithContext(context.WithValue(ctx, deadlineKey{}, timer)))
}

// boundedBody is an upstream body read under a deadline. An upstream that
// notices the proxy leave (over TLS the closing alert reaches it before the
// connection closes) may end its body properly, and http.Transport passes
// that end on even when the request was cancelled: a scrape cut short would
// then look whole, and a prefetched one would be answered 200 with a
// Content-Length. Once the deadline has passed, the end of a body is an error.
type boundedBody struct {
	io.ReadCloser
	ctx context.Context
}

func (b *boundedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && context.Cause(b.ctx) == errUpstreamTimeout {
		err = errUpstreamTimeout
	}
	return n, err
}

// exchangeTimeout is the bound of one exchange: the scraper's own timeout
// when the request carries exactly one X-Prometheus-Scrape-Timeout-Seconds
// that is a positive decimal number of seconds (Prometheus sends "10" or
// "2.5"), else fallback. A scraper gives up at its timeout anyway; the
// header lets a scrape configured longer than --upstream-timeout finish, up to
// maxScrapeTimeout.
func exchangeTimeout(h http.Header, fallback time.Duration) time.Duration {
	v := h.Values(scrapeTimeoutHeader)
	if len(v) != 1 {
		return fallback
	}
	s := strings.TrimSpace(v[0])
	// Digits and a point only: no sign, exponent, hex, "Inf" or "NaN".
	if s == "" || strings.Trim(s, "0123456789.") != "" {
		return fallback
	}
	secs, err := strconv.ParseFloat(s, 64)
	if err != nil || secs >= float64(math.MaxInt64/int64(time.Second)) {
		return fallback
	}
	if d := time.Duration(secs * float64(time.Second)); d > 0 {
		// Any caller may send the header, also unauthenticated on an ignored path: it may
		// lengthen the bound, but never past maxScrapeTimeout (or the flag, when longer).
		if fallback > 0 {
			d = min(d, max(fallback, maxScrapeTimeout))
		}
		return d
	}
	return fallback
}

// maxScrapeTimeout bounds what X-Prometheus-Scrape-Timeout-Seconds may ask for: longer than
// any scrape timeout Prometheus is configured with in practice (it is at most the interval).
const maxScrapeTimeout = 5 * time.Minute
