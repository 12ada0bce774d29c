package proxy

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"sync"
	"testing"

	"github.com/rbac-proxy/rbac-proxy/internal/sample"
)

// TestTenantGetsNoEarlyHints: an upstream's 103 Early Hints reaches a caller allowed the whole
// endpoint as the upstream sent it, and never a tenant, whose answer carries none of its headers
// either; the tenant's answer is still the filtered exposition.
func TestTenantGetsNoEarlyHints(t *testing.T) {
	exposition := sample.Exposition("node-1", tenantGPUs, sample.Text)
	x := &recorder{serve: func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Link", "</team-b/serve-7>; rel=preload")
		w.Header().Set("X-Exporter-Namespace", "team-b")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		w.Header().Del("X-Exporter-Namespace")
		w.Header().Set("Content-Type", sample.ContentType)
		_, _ = w.Write([]byte(exposition))
	}}
	e, _ := startTenancy(t, x)
	for _, tc := range []struct {
		caller     string
		hints      int
		namespaces string
	}{
		{caller: "cluster", hints: 1, namespaces: "map[:4 team-a:8 team-b:4]"},
		{caller: "team-a", hints: 0, namespaces: "map[team-a:8]"},
	} {
		t.Run(tc.caller, func(t *testing.T) {
			var mu sync.Mutex
			var hints []textproto.MIMEHeader
			req, err := http.NewRequest(http.MethodGet, e.base+"/metrics", nil)
			if err != nil {
				t.Fatal(err)
			}
			req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
				Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
					mu.Lock()
					defer mu.Unlock()
					hints = append(hints, h)
					return nil
				},
			}))
			req.Header.Set("Authorization", "Bearer "+tc.caller)
			resp, err := e.client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(hints) != tc.hints {
				t.Fatalf("%d informational responses reached %s: %v", len(hints), tc.caller, hints)
			}
			if tc.hints > 0 && hints[0].Get("Link") == "" {
				t.Errorf("the 103 reached %s without its Link: %v", tc.caller, hints[0])
			}
			if resp.StatusCode != 200 || resp.Header.Get("Link") != "" || resp.Header.Get("X-Exporter-Namespace") != "" {
				t.Errorf("%s got %d with headers %v", tc.caller, resp.StatusCode, resp.Header)
			}
			if got := namespacesOf(string(b)); fmt.Sprint(got) != tc.namespaces {
				t.Errorf("%s got series %v, want %s", tc.caller, got, tc.namespaces)
			}
		})
	}
}
