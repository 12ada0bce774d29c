package check

import (
	"fmt"
	"strings"

	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// ruleTokenAudiences: the audiences a protected workload's proxy takes tokens of are named by
// its template (a tenant's), and a scraper mints its tokens for them (scrape-config prints that
// audience): one of another namespace's proxies (rbac-proxy:NS) or a URL (the API server's, an
// issuer's) would have Prometheus hand the workload's owner a token that works elsewhere.
func ruleTokenAudiences(a *analysis, x *assessed) {
	if !x.protected() {
		return
	}
	own := inject.LocalAudience(x.ref.Namespace)
	var foreign []string
	for _, aud := range x.policy.TokenAudiences {
		if why := foreignAudience(aud, own); why != "" {
			foreign = append(foreign, fmt.Sprintf("%q (%s)", aud, why))
		}
	}
	if len(foreign) == 0 {
		return
	}
	where := x.templateField("metadata.annotations")
	a.find(CodeForeignTokenAudience, x.ref, x,
		fmt.Sprintf("the proxy of %s %s takes tokens of audience %s: a scraper that mints its token for it hands the workload's owner a token valid there", x.ref.Kind, x.ref.Name, strings.Join(foreign, ", ")),
		fmt.Sprintf("set %s: %s in %s (or an audience no other service takes)", inject.AnnotationTokenAudiences, own, where))
}

// foreignAudience says whose an audience is when it is not the workload's own: another
// namespace's proxies', or a URL's (the API server's audience is its issuer URL); empty for the
// workload's own or another plain name.
func foreignAudience(aud, own string) string {
	switch {
	case aud == own:
		return ""
	case strings.HasPrefix(aud, inject.LocalAudiencePrefix):
		return "the proxies' of namespace " + strings.TrimPrefix(aud, inject.LocalAudiencePrefix)
	case strings.Contains(aud, "://"):
		return "a URL, as the API server's and other issuers' audiences are"
	}
	return ""
}
