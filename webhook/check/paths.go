package check

import (
	"fmt"
	"strings"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// rulePaths: the path Prometheus scrapes is one the proxy authenticates and authorizes. A
// template may name it in rbac-proxy.io/ignore-paths (meant for paths such as /health), and
// then the proxy passes every caller through: the workload carries the proxy and is open all
// the same. The proxy's own path decision (config.PathPolicy) judges it.
func rulePaths(a *analysis, x *assessed) {
	if !x.protected() || len(x.policy.IgnorePaths) == 0 {
		return
	}
	scraped := scrapePath(x.policy)
	if !(config.PathPolicy{Allow: x.policy.AllowPaths, Ignore: x.policy.IgnorePaths}).Ignores(scraped) {
		return
	}
	where := x.templateField("metadata.annotations")
	a.find(CodeUnauthenticatedPath, x.ref, x,
		fmt.Sprintf("the proxy of %s %s serves %s to anyone, without authentication or authorization: %s is %q", x.ref.Kind, x.ref.Name, scraped, inject.AnnotationIgnorePaths, strings.Join(x.policy.IgnorePaths, ",")),
		fmt.Sprintf("remove the patterns that match %s from %s in %s (it is for paths such as /health)", scraped, inject.AnnotationIgnorePaths, where))
}
