package proxy

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/go-logr/logr"
	"k8s.io/apiserver/pkg/authentication/user"

	"github.com/rbac-proxy/rbac-proxy/proxy/review"
	"github.com/rbac-proxy/rbac-proxy/proxy/tenancy"
)

// tenantPath serves, with --tenancy=namespace, a caller that the whole
// endpoint is denied to: the upstream's exposition, asked for in a format
// the filter reads, filtered down to the series of the namespaces the
// caller may read (review.Tenants). Only a denial leads here; a review that
// could not be made is refused as before, and an allowed caller's path
// never comes near the filter.
//
// Its answers: the filtered exposition; 403 as the denial itself when no
// series is visible, and 403 "could not be checked" when a namespace's
// review could not be made before the response began; 502 when the
// upstream's answer cannot be filtered (not a 200, not text 0.0.4 or
// OpenMetrics, an exposition that does not parse); 502 and 504 as for every
// caller when the upstream cannot be reached or is too slow, the filter's
// reading included (a gzip bomb of withheld series ends at the deadline). Once the
// response has begun, any error aborts it, so a scraper sees a failed
// scrape, never a short one that reads as whole.
type tenantPath struct {
	upstream *upstreamHandler
	tenants  *review.Tenants
	labels   []string
	metrics  *metrics
	log      logr.Logger
}

// tenantRequestHeaders are removed from a tenant's request to the upstream:
// the filter reads the upstream's whole answer, uncompressed (its own gzip
// follows the caller's Accept-Encoding), not a range or a 304.
var tenantRequestHeaders = []string{"Accept-Encoding", "Range", "If-Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since"}

// serves reports whether r can be served as a tenant: a GET or a HEAD that
// asks for no upgrade. Anything else keeps its 403.
func (t *tenantPath) serves(r *http.Request) bool {
	return t != nil && (r.Method == http.MethodGet || r.Method == http.MethodHead) && r.Header.Get("Upgrade") == ""
}

// serve answers r, whose identity headers are set, for u; denial is the
// 403 message of its whole-endpoint decision.
func (t *tenantPath) serve(w http.ResponseWriter, r *http.Request, u user.Info, denial string) {
	acceptEncoding := strings.Join(r.Header.Values("Accept-Encoding"), ",")
	out := r.Clone(r.Context())
	// A HEAD is filtered too: only the exposition tells its 200 from a 403.
	// The server sends no body for it.
	out.Method = http.MethodGet
	for _, k := range tenantRequestHeaders {
		out.Header.Del(k)
	}
	// Never protobuf, which the filter does not read.
	out.Header.Set("Accept", tenancy.UpstreamAccept(strings.Join(r.Header.Values("Accept"), ",")))
	t.upstream.serve(w, out, func(res *http.Response) { t.filter(w, res, u, acceptEncoding, denial) })
}

// filter answers the caller from the upstream's response res, inside the
// ReverseProxy (exchange.respond), which closes res.Body after it.
func (t *tenantPath) filter(w http.ResponseWriter, res *http.Response, u user.Info, acceptEncoding, denial string) {
	allow := t.tenants.Allow(u)
	var reviewErr error
	sw := &startWriter{ResponseWriter: w}
	err := tenancy.Serve(res.Request.Context(), sw, res, acceptEncoding, t.labels, func(ctx context.Context, ns string) (bool, error) {
		ok, err := allow(ctx, ns)
		if err != nil && reviewErr == nil {
			reviewErr = err
		}
		return ok, err
	})
	switch {
	case err == nil:
		t.metrics.tenants.WithLabelValues("served").Inc()
		t.log.V(4).Info("served as a tenant", "user", u.GetName(), "path", res.Request.URL.Path)
	case sw.started:
		t.metrics.tenants.WithLabelValues("aborted").Inc()
		t.log.V(2).Info("tenant's response aborted", "user", u.GetName(), "path", res.Request.URL.Path, "reason", err.Error())
		_ = res.Body.Close() // the ReverseProxy closes it only when ModifyResponse returns
		panic(http.ErrAbortHandler)
	case errors.Is(err, tenancy.ErrNothingVisible):
		t.metrics.tenants.WithLabelValues("nothing_visible").Inc()
		t.log.V(2).Info("forbidden: no series visible to the tenant", "user", u.GetName(), "path", res.Request.URL.Path)
		http.Error(w, denial, http.StatusForbidden)
	case context.Cause(res.Request.Context()) == errUpstreamTimeout:
		t.metrics.tenants.WithLabelValues("unfiltered").Inc()
		t.metrics.upstreamTimeouts.Inc()
		t.log.V(2).Info("upstream timed out", "path", res.Request.URL.Path, "error", err.Error())
		http.Error(w, "Gateway Timeout", http.StatusGatewayTimeout)
	case reviewErr != nil:
		t.metrics.tenants.WithLabelValues("error").Inc()
		t.metrics.authz.WithLabelValues("error").Inc()
		t.log.Error(reviewErr, "a tenant's namespace could not be reviewed", "user", u.GetName(), "path", res.Request.URL.Path)
		http.Error(w, "Forbidden: authorization could not be checked (user="+u.GetName()+", a namespace of the exposition)", http.StatusForbidden)
	default:
		t.metrics.tenants.WithLabelValues("unfiltered").Inc()
		t.log.Error(err, "the upstream's answer cannot be filtered for a tenant", "user", u.GetName(), "path", res.Request.URL.Path)
		http.Error(w, "Bad Gateway", http.StatusBadGateway)
	}
}

// startWriter notes whether the filter has begun the response.
type startWriter struct {
	http.ResponseWriter
	started bool
}

func (s *startWriter) WriteHeader(code int) {
	s.started = true
	s.ResponseWriter.WriteHeader(code)
}

func (s *startWriter) Write(b []byte) (int, error) {
	s.started = true
	return s.ResponseWriter.Write(b)
}

func (s *startWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
