package scrapeconfig

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// tokenAudience is the audience of the token Prometheus mints for the proxy of what in
// namespace. The audiences are the workload owner's to write, and the token is sent to their
// Pod: an audience that another service takes would hand them a token that works there. So it is
// the proxy's own audience, inject.LocalAudience(namespace), or else one that no proxy of another
// namespace and no API server takes: no rbac-proxy:<other namespace>, no URL (the API server's
// audiences are its service-account issuer, a URL). Without an audience (review mode and none
// set) the token would be Prometheus' own, valid at the API server: refused.
func tokenAudience(p *inject.Policy, namespace, what string) (string, error) {
	local := inject.LocalAudience(namespace)
	if len(p.TokenAudiences) == 0 {
		return "", fmt.Errorf("the proxy of %s takes tokens of the API server's own audience (%s: %s, %s unset): Prometheus would send it its own ServiceAccount token, which the API server takes as Prometheus, and prometheus-operator gives a scrape class carrying it to every monitor that names the class; set %s: %s (or %s: local, whose default it is) on the Pod template, or scrape with --auth cert",
			what, inject.AnnotationTokenVerification, p.TokenVerification, inject.AnnotationTokenAudiences, inject.AnnotationTokenAudiences, local, inject.AnnotationTokenVerification)
	}
	if slices.Contains(p.TokenAudiences, local) {
		return local, nil
	}
	aud := p.TokenAudiences[0]
	allowed := fmt.Sprintf("allowed: %s (the default of %s: local), or an audience of the proxy's own that is no URL", local, inject.AnnotationTokenVerification)
	if rest, ok := strings.CutPrefix(strings.ToLower(aud), inject.LocalAudiencePrefix); ok {
		return "", fmt.Errorf("%s of %s: %q is the audience of the proxies of namespace %q: a token of it, which Prometheus would send to this Pod, is taken there; %s", inject.AnnotationTokenAudiences, what, aud, rest, allowed)
	}
	if u, err := url.Parse(aud); err != nil || u.Scheme != "" || u.Host != "" {
		return "", fmt.Errorf("%s of %s: %q is a URL, as the API server's audiences (the service-account issuer) are: a token of it, which Prometheus would send to this Pod, may be valid at the API server; %s", inject.AnnotationTokenAudiences, what, aud, allowed)
	}
	return aud, nil
}
