package inject

import (
	"fmt"
	"slices"
	"strings"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
)

// LocalAudiencePrefix starts the audience the proxy of a Pod in local mode requires when the Pod
// names none: LocalAudiencePrefix + the Pod's namespace. A scraper asks for a projected token
// with it; the API server accepts no such token, and a token one namespace's proxies are sent
// works at no proxy of another namespace that keeps the default.
const LocalAudiencePrefix = "rbac-proxy:"

// LocalAudience is the audience the proxy of a Pod in namespace requires in local mode when the
// Pod's rbac-proxy.io/token-audiences names none.
func LocalAudience(namespace string) string { return LocalAudiencePrefix + namespace }

// TokenVerifications are the values of rbac-proxy.io/token-verification and of the webhook's
// default: the proxy's own.
func TokenVerifications() []config.SATokenVerification {
	return []config.SATokenVerification{config.SATokensReview, config.SATokensLocal}
}

// parseTokenVerification reads rbac-proxy.io/token-verification, the webhook's default when
// unset, after rbac-proxy.io/token-audiences. Local mode needs an audience of the proxy's own:
// the Pod's, checked here so that a refusal names the annotation, or LocalAudience.
func parseTokenVerification(ann map[string]string, d *Defaults, namespace string, p *Policy, errs *problems) {
	mode := d.TokenVerification
	if mode == "" {
		mode = config.SATokensReview
	}
	if v, ok := ann[AnnotationTokenVerification]; ok {
		mode = config.SATokenVerification(v)
		if !slices.Contains(TokenVerifications(), mode) {
			errs.add(AnnotationTokenVerification, v, "unknown verification", AllowedOf(AnnotationTokenVerification))
			return
		}
	}
	p.TokenVerification = mode
	if mode != config.SATokensLocal {
		return
	}
	v, set := ann[AnnotationTokenAudiences]
	switch {
	case set && p.TokenAudiences == nil:
		// parseNames has reported the value.
		return
	case !set && namespace == "":
		// inject -f of a manifest without metadata.namespace.
		errs.addUnset(AnnotationTokenAudiences, "local verification needs an audience of the proxy's own, and the Pod has no namespace to derive "+LocalAudience("NAMESPACE")+" from", AllowedOf(AnnotationTokenAudiences)+"; or give the Pod its namespace")
		return
	case !set:
		p.TokenAudiences = []string{LocalAudience(namespace)}
		return
	}
	allowed := AllowedOf(AnnotationTokenAudiences)
	for _, aud := range p.TokenAudiences {
		// The cluster's issuer is an audience of the API server's too, and the proxy refuses it
		// at start; it is an https URL (issuer discovery requires one) that the webhook does
		// not know, so no https URL is admitted.
		if strings.HasPrefix(strings.ToLower(aud), "https://") {
			errs.add(AnnotationTokenAudiences, v, fmt.Sprintf("%q is an https URL, as the cluster's service-account issuer (an audience of the API server) is: with %s=local the audience must be the proxy's own", aud, AnnotationTokenVerification), allowed)
			p.TokenAudiences = nil
			return
		}
	}
	if refusal := proxyRefusal(func(c *config.Config) {
		c.Authentication.Audiences = p.TokenAudiences
		c.Authentication.ServiceAccounts.Verification = config.SATokensLocal
	}); refusal != "" {
		errs.add(AnnotationTokenAudiences, v, refusal, allowed)
		p.TokenAudiences = nil
	}
}

func tokenVerificationNames() []string {
	var names []string
	for _, m := range TokenVerifications() {
		names = append(names, string(m))
	}
	return names
}
