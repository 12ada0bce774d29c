package scrapeconfig

import (
	"strings"
	"testing"
)

// TestTokenName: the scrape class, volume and folder of a token are a DNS label made of its
// audience.
func TestTokenName(t *testing.T) {
	for aud, want := range map[string]string{
		"rbac-proxy:gpu":       "rbac-proxy-gpu",
		"Metrics.Corp/Scrape_": "rbac-proxy-metrics-corp-scrape",
		// Cut to a DNS label's 63 characters, and never ending in a dash.
		"rbac-proxy:a-very-long-namespace-name-that-goes-on-and-on-and-on-beyond-63": "rbac-proxy-a-very-long-namespace-name-that-goes-on-and-on-and-o",
		"rbac-proxy:" + strings.Repeat("a", 51) + "-bcd":                             "rbac-proxy-" + strings.Repeat("a", 51),
	} {
		s := &Scrape{Audience: aud}
		if got := s.TokenName(); got != want || len(got) > 63 {
			t.Errorf("audience %q: %q, want %q", aud, got, want)
		}
	}
}
