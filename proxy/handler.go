package proxy

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

// proxyHandler is the request pipeline: path policy → identity → decision →
// sanitized request to the upstream.
type proxyHandler struct {
	paths    PathPolicy
	headers  headerPolicy
	upgrades upgradePolicy
	authn    requestAuthenticator
	attrs    *attributesBuilder
	authz    authorizer.Authorizer
	upstream http.Handler
	metrics  *metrics
	log      logr.Logger
}

func (h *proxyHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w}
	h.serve(sw, r)
	if cc := corkFrom(r.Context()); cc != nil && cc.isCorked() {
		// A prefetched answer: push it through the server's buffer, then
		// send every record in one write.
		_ = http.NewResponseController(w).Flush()
		cc.uncork()
	}
	sw.finish()
	h.metrics.request(sw.status())
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
	decision := h.paths.decide(cleaned)
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
	if err := h.attrs.checkRewriteSources(r); err != nil {
		h.log.V(2).Info("ambiguous rewrite value refused", "path", cleaned)
		http.Error(w, "Bad Request: "+err.Error(), http.StatusBadRequest)
		return
	}

	u, method, err := h.authn.authenticate(r)
	h.headers.sanitize(r.Header)
	if err != nil {
		result := "failure"
		if errors.Is(err, errReviewFailed) {
			result = "error"
		}
		h.metrics.authn.WithLabelValues(method, result).Inc()
		h.log.V(2).Info("unauthenticated request refused", "method", method, "path", cleaned, "reason", err.Error())
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	h.metrics.authn.WithLabelValues(method, "success").Inc()

	attrs := h.attrs.build(u, r, cleaned)
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
			h.log.Error(err, "authorization failed", "user", u.GetName(), "attributes", describe(a))
			http.Error(w, fmt.Sprintf("Forbidden: authorization could not be checked (user=%s, %s)", u.GetName(), describe(a)), http.StatusForbidden)
			return
		}
		if d != authorizer.DecisionAllow {
			h.metrics.authz.WithLabelValues("denied").Inc()
			h.log.V(2).Info("forbidden", "user", u.GetName(), "attributes", describe(a), "reason", reason)
			http.Error(w, fmt.Sprintf("Forbidden (user=%s, %s)", u.GetName(), describe(a)), http.StatusForbidden)
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

// flushDelay bounds how long written data may wait for a flush. The
// ReverseProxy flushes after every read of a response of unknown length
// (what Prometheus exporters send); coalescing those flushes turns a scrape
// into a few large TLS writes instead of many small ones, while a slow
// stream still reaches the client within this delay.
const flushDelay = time.Millisecond

// statusWriter records the status code and coalesces flushes. It unwraps
// for http.ResponseController, so hijacking still works.
type statusWriter struct {
	http.ResponseWriter
	code int

	mu      sync.Mutex // orders writes with the delayed flush
	timer   *time.Timer
	pending bool
	done    bool
}

func (s *statusWriter) WriteHeader(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.code == 0 && code >= 200 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Flush schedules a flush within flushDelay; event streams flush at once.
func (s *statusWriter) Flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.code == 0 {
		s.code = http.StatusOK
	}
	if s.done || s.pending {
		return
	}
	if strings.HasPrefix(s.ResponseWriter.Header().Get("Content-Type"), "text/event-stream") {
		_ = http.NewResponseController(s.ResponseWriter).Flush()
		return
	}
	s.pending = true
	if s.timer == nil {
		s.timer = time.AfterFunc(flushDelay, s.delayedFlush)
	} else {
		s.timer.Reset(flushDelay)
	}
}

func (s *statusWriter) delayedFlush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done || !s.pending {
		return
	}
	s.pending = false
	_ = http.NewResponseController(s.ResponseWriter).Flush()
}

// finish stops delayed flushing; the server flushes what is left when the
// handler returns.
func (s *statusWriter) finish() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done = true
	if s.timer != nil {
		s.timer.Stop()
	}
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusWriter) status() int {
	if s.code == 0 {
		return http.StatusOK
	}
	return s.code
}
