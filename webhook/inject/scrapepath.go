package inject

import (
	"fmt"
	"strings"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
)

// DefaultScrapePath is what Prometheus scrapes unless the proxy allows other paths only.
const DefaultScrapePath = "/metrics"

// ScrapePath is the path a scraper of this policy's proxy asks for: /metrics unless
// rbac-proxy.io/allow-paths leaves it out (judged by the proxy's own path decision), then the
// first allowed path that is a path rather than a pattern. scrape-config prints it, and check
// judges the scraper's rights and the ignored paths on it.
func (p *Policy) ScrapePath() (string, error) {
	if (config.PathPolicy{Allow: p.AllowPaths}).Serves(DefaultScrapePath) {
		return DefaultScrapePath, nil
	}
	for _, path := range p.AllowPaths {
		if !strings.ContainsAny(path, `*?[\`) {
			return path, nil
		}
	}
	return "", fmt.Errorf("%s %s allows no %s and names only patterns, no path to scrape", AnnotationAllowPaths, strings.Join(p.AllowPaths, ","), DefaultScrapePath)
}
