package proxy

import (
	"fmt"
	"net/http"

	"github.com/go-logr/logr"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
	"github.com/rbac-proxy/rbac-proxy/proxy/review"
)

// proxyHandler is the request pipeline: path policy → identity → decision →
// sanitized request to the upstream.
type proxyHandler struct {
	paths    config.PathPolicy
	headers  headerPolicy
	upgrades upgradePolicy
	authn    authenticator.Request
	attrs    *review.Attributes
	authz    authorizer.Authorizer
	upstream http.Handler
	metrics  *metrics
	log      logr.Logger
}

func (h *proxyHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w}
	// Deferred, so that it runs when the request panics too: the
	// ReverseProxy ends a response it cannot finish (the client went away,
	// the upstream broke off or timed out) with panic(http.ErrAbortHandler),
	// and net/http recovers that on this goroutine and closes the
	// connection. Nothing of this request may be left running after it.
	defer func() {
		p := recover()
		if cc := corkFrom(r.Context()); cc != nil && cc.isCorked() {
			if p == nil {
				// A prefetched answer: push it through the server's buffer,
				// then send every record in one write.
				_ = http.NewResponseController(w).Flush()
				cc.uncork()
			} else {
				// The connection is closed after the panic; what was gathered
				// is not a whole response.
				cc.discard()
			}
		}
		h.metrics.request(sw.status())
		if p != nil {
			if p != http.ErrAbortHandler {
				h.log.Error(fmt.Errorf("%v", p), "request panicked; the connection is closed", "path", r.URL.Path)
			}
			// Re-panic so that net/http aborts the response instead of
			// ending it as if it were complete.
			panic(p)
		}
	}()
	h.serve(sw, r)
}

func (h *proxyHandler) serve(w http.ResponseWriter, r *http.Request) {
	// Before anything else, on every path: an h2c upgrade would let the
	// upstream serve any path, unchecked, over the tunnel.
	upgrade, err := h.upgrades.check(r.Header)
	if err != nil {
		h.log.V(2).Info("upgrade refused", "path", r.URL.Path, "reason", err.Error())
		http.Error(w, "Bad Request: "+err.Error(), http.StatusBadRequest)
		return
	}
	if r.Method == http.MethodConnect {
		// A tunnel would carry bytes no path policy or review has seen.
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	cleaned, ok := cleanRequestPath(r.URL.Path)
	if !ok {
		http.Error(w, "Bad Request: invalid path", http.StatusBadRequest)
		return
	}
	decision := decidePath(h.paths, cleaned)
	if decision == pathNotFound {
		http.NotFound(w, r)
		return
	}

	// From here on the upstream sees the cleaned path and nothing else.
	r.URL.Path, r.URL.RawPath = cleaned, ""

	if decision == pathIgnored {
		if upgrade {
			http.Error(w, "Bad Request: "+errUpgradeIgnoredPath.Error(), http.StatusBadRequest)
			return
		}
		h.headers.sanitize(r.Header)
		h.upstream.ServeHTTP(w, r)
		return
	}
	// Refused before a review is spent on it.
	if err := h.attrs.CheckRewriteSources(r); err != nil {
		h.log.V(2).Info("ambiguous rewrite value refused", "path", cleaned)
		http.Error(w, "Bad Request: "+err.Error(), http.StatusBadRequest)
		return
	}

	resp, ok, err := h.authn.AuthenticateRequest(r)
	h.headers.sanitize(r.Header)
	if !ok {
		h.log.V(2).Info("unauthenticated request refused", "path", cleaned, "reason", fmt.Sprint(err))
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	u := resp.User

	attrs := h.attrs.Build(u, r, cleaned)
	if len(attrs) == 0 {
		h.metrics.authz.WithLabelValues("denied").Inc()
		msg := "Bad Request. The request or configuration is malformed."
		h.log.V(2).Info("request without a rewrite value refused", "user", u.GetName(), "path", cleaned)
		http.Error(w, msg, http.StatusBadRequest)
		return
	}
	for i := range attrs {
		a := &attrs[i]
		d, reason, err := h.authz.Authorize(r.Context(), a)
		if err != nil && d != authorizer.DecisionAllow {
			// The API server could not answer and nothing cached applies:
			// an identity we cannot vouch for is refused, never let through.
			h.metrics.authz.WithLabelValues("error").Inc()
			h.log.Error(err, "authorization failed", "user", u.GetName(), "attributes", review.Describe(a))
			http.Error(w, fmt.Sprintf("Forbidden: authorization could not be checked (user=%s, %s)", u.GetName(), review.Describe(a)), http.StatusForbidden)
			return
		}
		if d != authorizer.DecisionAllow {
			h.metrics.authz.WithLabelValues("denied").Inc()
			h.log.V(2).Info("forbidden", "user", u.GetName(), "attributes", review.Describe(a), "reason", reason)
			http.Error(w, fmt.Sprintf("Forbidden (user=%s, %s)", u.GetName(), review.Describe(a)), http.StatusForbidden)
			return
		}
	}
	h.metrics.authz.WithLabelValues("allowed").Inc()
	// Set in the ReverseProxy's Rewrite, after hop-by-hop headers are removed.
	r = h.headers.withIdentity(r, u)
	if lg := h.log.V(4); lg.Enabled() { // the arguments alone would cost four allocations
		lg.Info("proxying", "user", u.GetName(), "method", r.Method, "path", cleaned)
	}
	h.upstream.ServeHTTP(w, r)
}

// statusWriter records the status code of a response. It has no Flush of
// its own: http.ResponseController unwraps it, so flushes (and hijacking)
// reach the server's writer directly and only ever from the handler's
// goroutine or from the ReverseProxy's flush timer, which the ReverseProxy
// stops before it returns. A flush timer of our own once outlived an
// aborted handler and flushed a finished ResponseWriter, which crashed the
// process (issue 15, item 0).
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.code == 0 && code >= 200 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusWriter) status() int {
	if s.code == 0 {
		return http.StatusOK
	}
	return s.code
}
