package proxy

import (
	"fmt"
	"net/http"

	"github.com/go-logr/logr"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
	"github.com/rbac-proxy/rbac-proxy/proxy/review"
)

// proxyHandler is the request path, in one direction: request hygiene
// (upgrades, the cleaned path, allow and ignore paths, ambiguous rewrite
// values, client-sent identity headers) → identity (authn) → decision
// (authz, every attribute the request needs) → upstream, which answers; or,
// with --tenancy, a denied GET → the upstream's exposition, filtered.
type proxyHandler struct {
	paths    config.PathPolicy
	headers  headerPolicy
	upgrades upgradePolicy
	authn    authenticator.Request
	attrs    *review.Attributes
	authz    authorizer.Authorizer
	upstream http.Handler
	tenants  *tenantPath // nil: --tenancy is off
	metrics  *metrics
	log      logr.Logger
}

func (h *proxyHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w}
	// Deferred, so that it counts a request that panics too (the ReverseProxy
	// aborts a response it cannot finish with panic(http.ErrAbortHandler)).
	defer func() {
		h.metrics.request(sw.status())
		if p := recover(); p != nil {
			if p != http.ErrAbortHandler {
				h.log.Error(fmt.Errorf("%v", p), "request panicked; the connection is closed", "path", r.URL.Path)
			}
			// Re-panic so that net/http aborts the response instead of
			// ending it as if it were complete, and closes the connection.
			panic(p)
		}
	}()
	h.serve(sw, r)
}

func (h *proxyHandler) serve(w http.ResponseWriter, r *http.Request) {
	path, checked, ok := h.hygiene(w, r)
	if !ok {
		return
	}
	if !checked { // --ignore-paths: no identity, no decision
		h.upstream.ServeHTTP(w, r)
		return
	}
	u, ok := h.identify(w, r, path)
	if !ok {
		return
	}
	allowed, denial := h.decide(w, r, u, path)
	if !allowed {
		if denial == "" {
			return // answered
		}
		if !h.tenants.serves(r) {
			http.Error(w, denial, http.StatusForbidden)
			return
		}
		h.tenants.serve(w, h.headers.withIdentity(r, u), u, denial)
		return
	}
	// Set in the ReverseProxy's Rewrite, after hop-by-hop headers are removed.
	r = h.headers.withIdentity(r, u)
	if lg := h.log.V(4); lg.Enabled() { // the arguments alone would cost four allocations
		lg.Info("proxying", "user", u.GetName(), "method", r.Method, "path", path)
	}
	h.upstream.ServeHTTP(w, r)
}

// hygiene refuses what no path policy or review could check, and leaves r
// with its cleaned path, the only one the upstream sees. checked is false
// on --ignore-paths, where the request goes on without identity or
// decision, its client-sent identity headers removed. ok is false when the
// request was answered.
func (h *proxyHandler) hygiene(w http.ResponseWriter, r *http.Request) (path string, checked, ok bool) {
	// Before anything else, on every path: an h2c upgrade would let the
	// upstream serve any path, unchecked, over the tunnel.
	upgrade, err := h.upgrades.check(r.Header)
	if err != nil {
		h.log.V(2).Info("upgrade refused", "path", r.URL.Path, "reason", err.Error())
		http.Error(w, "Bad Request: "+err.Error(), http.StatusBadRequest)
		return "", false, false
	}
	if r.Method == http.MethodConnect {
		// A tunnel would carry bytes no path policy or review has seen.
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return "", false, false
	}
	cleaned, ok := cleanRequestPath(r.URL.Path)
	if !ok {
		http.Error(w, "Bad Request: invalid path", http.StatusBadRequest)
		return "", false, false
	}
	decision := decidePath(h.paths, cleaned)
	if decision == pathNotFound {
		http.NotFound(w, r)
		return "", false, false
	}
	r.URL.Path, r.URL.RawPath = cleaned, ""

	if decision == pathIgnored {
		if upgrade {
			http.Error(w, "Bad Request: "+errUpgradeIgnoredPath.Error(), http.StatusBadRequest)
			return "", false, false
		}
		h.headers.sanitize(r.Header)
		return cleaned, false, true
	}
	// Refused before a review is spent on it.
	if err := h.attrs.CheckRewriteSources(r); err != nil {
		h.log.V(2).Info("ambiguous rewrite value refused", "path", cleaned)
		http.Error(w, "Bad Request: "+err.Error(), http.StatusBadRequest)
		return "", false, false
	}
	return cleaned, true, true
}

// identify authenticates the caller, then removes its credentials and any
// identity headers it sent; ok is false when it was refused (401).
func (h *proxyHandler) identify(w http.ResponseWriter, r *http.Request, path string) (_ user.Info, ok bool) {
	resp, ok, err := h.authn.AuthenticateRequest(r)
	h.headers.sanitize(r.Header)
	if !ok {
		h.log.V(2).Info("unauthenticated request refused", "path", path, "reason", fmt.Sprint(err))
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return nil, false
	}
	if g := h.headers.unsayable(resp.User); g != "" {
		// An identity the upstream would read otherwise is not one we vouch for.
		h.log.V(2).Info("identity refused: a group holds the groups header's separator", "user", resp.User.GetName(), "group", g)
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return nil, false
	}
	return resp.User, true
}

// decide authorizes every attribute the request needs. A review that could
// not be made refuses the request (403), as does a request without the
// rewrite value it needs (400): an identity we cannot vouch for is refused,
// never let through. An attribute that is not allowed denies it: denial is
// then the 403's message, which the caller sends unless it serves the
// request as a tenant. allowed false and denial "" mean w was answered.
func (h *proxyHandler) decide(w http.ResponseWriter, r *http.Request, u user.Info, path string) (allowed bool, denial string) {
	attrs := h.attrs.Build(u, r, path)
	if len(attrs) == 0 {
		h.metrics.authz.WithLabelValues("denied").Inc()
		h.log.V(2).Info("request without a rewrite value refused", "user", u.GetName(), "path", path)
		http.Error(w, "Bad Request. The request or configuration is malformed.", http.StatusBadRequest)
		return false, ""
	}
	for i := range attrs {
		a := &attrs[i]
		d, reason, err := h.authz.Authorize(r.Context(), a)
		if err != nil && d != authorizer.DecisionAllow {
			h.metrics.authz.WithLabelValues("error").Inc()
			h.log.Error(err, "authorization failed", "user", u.GetName(), "attributes", review.Describe(a))
			http.Error(w, fmt.Sprintf("Forbidden: authorization could not be checked (user=%s, %s)", u.GetName(), review.Describe(a)), http.StatusForbidden)
			return false, ""
		}
		if d != authorizer.DecisionAllow {
			h.metrics.authz.WithLabelValues("denied").Inc()
			h.log.V(2).Info("forbidden", "user", u.GetName(), "attributes", review.Describe(a), "reason", reason)
			return false, fmt.Sprintf("Forbidden (user=%s, %s)", u.GetName(), review.Describe(a))
		}
	}
	h.metrics.authz.WithLabelValues("allowed").Inc()
	return true, ""
}

// statusWriter records the status code of a response. It has no Flush of
// its own: http.ResponseController unwraps it, so flushes (and hijacking)
// reach the server's writer directly and only ever from the handler's
// goroutine or from the ReverseProxy's flush timer, which the ReverseProxy
// stops before it returns. A flush timer of our own once outlived an
// aborted handler and flushed a finished ResponseWriter, which crashed the
// process.
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
