package inject

import (
	"github.com/rbac-proxy/rbac-proxy/proxy/config"
)

// parseTenancy reads rbac-proxy.io/tenancy and the namespace labels that go with it, which the
// proxy's own validation checks (Prometheus label names, none twice).
func parseTenancy(ann map[string]string, p *Policy, errs *problems) {
	if v, ok := ann[AnnotationTenancy]; ok {
		if config.TenancyMode(v) != config.TenancyNamespace {
			errs.add(AnnotationTenancy, v, "unknown mode", AllowedOf(AnnotationTenancy))
		} else {
			p.Tenancy = config.TenancyNamespace
		}
	}
	v, ok := ann[AnnotationTenancyNamespaceLabels]
	if !ok {
		return
	}
	if p.Tenancy != config.TenancyNamespace {
		errs.add(AnnotationTenancyNamespaceLabels, v, "only used with "+AnnotationTenancy+"=namespace", AllowedOf(AnnotationTenancyNamespaceLabels))
		return
	}
	labels, ok := parseList(AnnotationTenancyNamespaceLabels, v, errs)
	if !ok {
		return
	}
	refusal := proxyRefusal(func(c *config.Config) {
		c.Authorization.Tenancy.Mode, c.Authorization.Tenancy.NamespaceLabels = config.TenancyNamespace, labels
	})
	if refusal != "" {
		errs.add(AnnotationTenancyNamespaceLabels, v, refusal, AllowedOf(AnnotationTenancyNamespaceLabels))
		return
	}
	p.TenancyNamespaceLabels = labels
}

// MakesSARs reports whether the Pod's proxy makes SubjectAccessReviews, by the proxy's own rule
// (config.AuthorizationConfig.MakesSARs).
func (p *Policy) MakesSARs() bool {
	return config.AuthorizationConfig{Mode: p.Authz, Tenancy: config.Tenancy{Mode: p.Tenancy}}.MakesSARs()
}
