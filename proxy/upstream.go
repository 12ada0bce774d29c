package proxy

import (
	"context"
	"errors"
	"io"
	stdlog "log"
	"math"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
)

// upstreamHandler is the last step of a request: the sanitized request goes
// to the upstream, and its response comes back to the client, in this order:
//
//  1. The exchange gets its deadline: the scrape timeout the scraper sent,
//     else --upstream-timeout (0: none). A hung exporter then holds a scrape
//     that long, not forever. The deadline cancels the request's context,
//     which the transport obeys for the whole exchange: before the response
//     starts it is a 504 Gateway Timeout, afterwards the response is
//     aborted. A client that goes away cancels the same context.
//  2. The ReverseProxy forwards the request; Rewrite forwards exactly the
//     cleaned and checked path and sets the identity headers last.
//  3. Its response, in ModifyResponse (exchange.respond): a protocol switch
//     lifts the deadline; a body past the deadline ends in an error; a small
//     exposition is prefetched whole and its connection corked.
//  4. The ReverseProxy copies the response: it streams, nothing is buffered
//     beyond the copy buffer, and responses of unknown length are flushed
//     after every read from the upstream.
//  5. The exchange ends (exchange.finish): a corked answer is sent in one
//     write, or dropped if the request panicked.
type upstreamHandler struct {
	proxy   http.Handler // the ReverseProxy
	timeout time.Duration
	metrics *metrics
}

func newUpstreamHandler(u config.UpstreamConfig, transport http.RoundTripper, m *metrics, log logr.Logger) *upstreamHandler {
	scheme, host, base := u.URL.Scheme, u.URL.Host, u.URL.Path
	if scheme == "unix" {
		scheme, host, base = "http", "localhost", ""
	}
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
		BufferPool: copyBuffers,
		ModifyResponse: func(resp *http.Response) error {
			return resp.Request.Context().Value(exchangeKey{}).(*exchange).respond(resp)
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			switch {
			case errors.Is(err, errAnswered): // a tenant's response, filtered
			case errors.Is(err, errRedirectElsewhere):
				log.Info("refused an upstream redirect away from the proxy", "path", r.URL.Path, "status", "502")
				http.Error(w, "Bad Gateway", http.StatusBadGateway)
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

// exchange is one request's way to the upstream and back, for the
// ReverseProxy's ModifyResponse.
type exchange struct {
	ctx      context.Context
	deadline *time.Timer // nil: unbounded
	cork     *corkConn   // nil: never corked (see corkFor)
	corked   bool
	// filter answers a tenant from the upstream's response (tenant.go);
	// nil for every other caller, whose response is the upstream's.
	filter func(*http.Response)
}

// errAnswered is what ModifyResponse returns once the filter has answered
// the caller itself: the ReverseProxy then closes the upstream's body and
// writes nothing.
var errAnswered = errors.New("answered by the tenancy filter")

type exchangeKey struct{}

func (h *upstreamHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.serve(w, r, nil)
}

// serve is ServeHTTP, the upstream's response handed to filter when it is
// not nil.
func (h *upstreamHandler) serve(w http.ResponseWriter, r *http.Request, filter func(*http.Response)) {
	setForwarded(w) // from here on, error statuses are the upstream's answers
	ctx, cancel := context.WithCancelCause(r.Context())
	ex := &exchange{ctx: ctx, cork: corkFor(r), filter: filter}
	if d := exchangeTimeout(r.Header, h.timeout); d > 0 {
		// The timer only cancels the context: nothing but this goroutine
		// ever touches the ResponseWriter.
		ex.deadline = time.AfterFunc(d, func() { cancel(errUpstreamTimeout) })
	}
	// Deferred, so that it runs when the ReverseProxy panics too: it aborts a
	// response it cannot finish (the client went away, the upstream broke off
	// or timed out) with panic(http.ErrAbortHandler).
	defer func() {
		p := recover()
		ex.finish(w, p != nil)
		if p != nil && context.Cause(ctx) == errUpstreamTimeout {
			h.metrics.upstreamTimeouts.Inc()
		}
		cancel(nil)
		if p != nil {
			panic(p)
		}
	}()
	pw := w
	if filter != nil {
		pw = newNoInformational(w)
	}
	h.proxy.ServeHTTP(pw, r.WithContext(context.WithValue(ctx, exchangeKey{}, ex)))
}

// respond is the ReverseProxy's ModifyResponse.
func (ex *exchange) respond(resp *http.Response) error {
	// http.Transport may return a response that raced the deadline's cancel
	// (over TLS the upstream sees the closing alert and answers). One without
	// a body (http.NoBody) never reaches boundedBody, and would go out as a
	// whole, empty 200: past the deadline every answer is a timeout.
	if context.Cause(ex.ctx) == errUpstreamTimeout {
		return errUpstreamTimeout
	}
	if ex.filter != nil {
		// Before anything else: a tenant gets what the filter reads, a
		// switch of protocols included (refused: it is not a 200).
		ex.bound(resp)
		ex.filter(resp)
		return errAnswered
	}
	if redirectsElsewhere(resp) {
		return errRedirectElsewhere
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// An upgraded connection lasts as long as both ends keep it: the
		// deadline bounded the wait for the switch, not the tunnel.
		if ex.deadline != nil {
			ex.deadline.Stop()
		}
		return nil
	}
	ex.bound(resp)
	whole, err := prefetch(resp)
	if whole {
		ex.gather()
	}
	return err
}

// bound reads resp's body under the exchange's deadline (see boundedBody). Never on
// a protocol switch's body, which must stay the tunnel it is.
func (ex *exchange) bound(resp *http.Response) {
	if ex.deadline != nil && resp.Body != http.NoBody {
		resp.Body = &boundedBody{ReadCloser: resp.Body, ctx: ex.ctx}
	}
}

// gather corks the connection of an answer that is whole in memory: its TLS
// records are sent in one write when the exchange ends.
func (ex *exchange) gather() {
	if ex.cork != nil {
		ex.cork.cork()
		ex.corked = true
	}
}

// finish ends the exchange once the ReverseProxy has returned. A corked
// answer is pushed through the server's buffer and sent in one write; after
// a panic net/http closes the connection, and what was gathered is not a
// whole response, so it is dropped.
func (ex *exchange) finish(w http.ResponseWriter, panicked bool) {
	if ex.deadline != nil {
		ex.deadline.Stop()
	}
	if !ex.corked {
		return
	}
	if panicked {
		ex.cork.discard()
		return
	}
	_ = http.NewResponseController(w).Flush()
	ex.cork.uncork()
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
