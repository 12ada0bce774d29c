package proxy

import (
	"net/http"
	"testing"
)

// TestUpstreamRedirectAway: an upstream's redirect reaches the caller only when it leads back
// through the proxy (a relative Location, or https to the Host the caller asked for); one to
// another port of the same host, over http, to another host, scheme-relative or unparseable is
// a 502 without the Location, so a scraper that follows redirects never takes its credentials
// to a place the exporter chose. A tenant gets no redirect either.
func TestUpstreamRedirectAway(t *testing.T) {
	var location []string
	x := &recorder{serve: func(w http.ResponseWriter, _ *http.Request) {
		w.Header()["Location"] = location
		w.WriteHeader(http.StatusFound)
	}}
	e, _ := startTenancy(t, x)
	host := e.base[len("https://"):]
	for _, tc := range []struct {
		name     string
		location []string
		caller   string
		relayed  bool
	}{
		{"relative path", []string{"/metrics/gpu"}, "cluster", true},
		{"relative, no slash", []string{"gpu"}, "cluster", true},
		{"https to the proxy itself", []string{"https://" + host + "/metrics/gpu"}, "cluster", true},
		{"http to the proxy's host and port", []string{"http://" + host + "/metrics"}, "cluster", false},
		{"another port of the same host", []string{"https://127.0.0.1:1/steal"}, "cluster", false},
		{"plain http elsewhere", []string{"http://127.0.0.1:9/steal"}, "cluster", false},
		{"scheme-relative", []string{"//127.0.0.1:9/steal"}, "cluster", false},
		{"backslashes", []string{`/\127.0.0.1:9/steal`}, "cluster", false},
		{"two Locations", []string{"/metrics", "http://127.0.0.1:9/"}, "cluster", false},
		{"unparseable", []string{"http://[::1"}, "cluster", false},
		{"a tenant, relative", []string{"/metrics/gpu"}, "team-a", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			location = tc.location
			c := e.client()
			c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			req, err := http.NewRequest(http.MethodGet, e.base+"/metrics", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+tc.caller)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got := resp.Header.Get("Location")
			switch {
			case tc.relayed && (resp.StatusCode != http.StatusFound || got != tc.location[0]):
				t.Errorf("%d Location %q, want the 302 to %q", resp.StatusCode, got, tc.location[0])
			case !tc.relayed && (resp.StatusCode == http.StatusFound || got != ""):
				t.Errorf("%d Location %q reached the caller", resp.StatusCode, got)
			}
		})
	}
}
