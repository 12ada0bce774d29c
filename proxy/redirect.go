package proxy

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// errRedirectElsewhere is what ModifyResponse returns for an upstream's
// redirect away from the proxy: the ReverseProxy answers 502 instead.
var errRedirectElsewhere = errors.New("the upstream redirected the caller away from the proxy")

// redirectsElsewhere reports whether resp sends the caller somewhere other
// than back through this proxy. A scraper that follows redirects (Prometheus
// does by default) sends its credentials along: to another port of the same
// host it keeps even the Authorization header, over plain http too. So an
// exporter, which a tenant may control, could collect the scrapers' tokens.
// A relative Location comes back through the proxy and is relayed; an
// absolute one is relayed only when it is https to the host the caller asked
// for (a Host header with its port), which is the proxy itself.
func redirectsElsewhere(resp *http.Response) bool {
	if resp.StatusCode < 300 || resp.StatusCode > 399 {
		return false
	}
	loc := resp.Header.Values("Location")
	if len(loc) == 0 {
		return false
	}
	if len(loc) > 1 {
		return true
	}
	u, err := url.Parse(loc[0])
	if err != nil {
		return true
	}
	if !u.IsAbs() && u.Host == "" && !strings.HasPrefix(loc[0], "//") && !strings.HasPrefix(loc[0], `/\`) && !strings.HasPrefix(loc[0], `\`) {
		return false
	}
	return u.Scheme != "https" || resp.Request == nil || !strings.EqualFold(u.Host, resp.Request.Host)
}
