package check

import (
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// grant is what a ScraperForbidden finding says a scraper lacks, and how to give it: the
// workload's template (a tenant's) names what its proxy asks, so a command is printed only for a
// right confined to the workload's own namespace and harmless to hand out; for anything else the
// fix is to review the annotation, never to grant what a tenant wrote.
type grant struct {
	// asked is what the proxy asks ("get services/metrics dcgm in namespace gpu").
	asked string
	// sensitive, when not empty, is why no command is printed (it starts with "; ").
	sensitive string
	fix       string
}

// sensitiveSubresources give more than a read of the object: a shell, a port, a proxy to it, a
// token of it.
var sensitiveSubresources = map[string]bool{"exec": true, "attach": true, "portforward": true, "proxy": true, "token": true}

// resourceGrant is the Role and RoleBinding in the workload's namespace that let the scraper get
// the resource attributes its proxy asks, or what to review when that is not a right to hand out.
func resourceGrant(ra *config.ResourceAttributes, x *assessed, s Scraper) grant {
	resource := ra.Resource
	if ra.Subresource != "" {
		resource += "/" + ra.Subresource
	}
	if ra.APIGroup != "" {
		resource += "." + ra.APIGroup
	}
	g := grant{asked: "get " + resource}
	if ra.Name != "" {
		g.asked += " " + ra.Name
	}
	if ra.Namespace != "" {
		g.asked += " in namespace " + ra.Namespace
	}
	var why string
	switch {
	case ra.Namespace == "":
		why = "names no namespace, so the right is one in every namespace"
	case ra.Namespace != x.ref.Namespace:
		why = "names namespace " + ra.Namespace + ", not the workload's " + x.ref.Namespace
	case ra.Resource == "secrets" || ra.Resource == "*" || ra.Subresource == "*" || sensitiveSubresources[ra.Subresource]:
		why = "names " + resource + ", which gives more than metrics"
	case len(validation.IsDNS1123Label(ra.Resource)) > 0 || ra.Subresource != "" && len(validation.IsDNS1123Label(ra.Subresource)) > 0 ||
		ra.APIGroup != "" && len(validation.IsDNS1123Subdomain(ra.APIGroup)) > 0 || ra.Name != "" && len(validation.IsDNS1123Subdomain(ra.Name)) > 0:
		why = "names no resource as the API server spells one"
	}
	if why != "" {
		g.sensitive = "; " + inject.AnnotationResourceAttributes + " " + why + ", a sensitive right: no command to grant it is given"
		g.fix = "review " + inject.AnnotationResourceAttributes + " of " + x.ref.Kind + " " + x.ref.Namespace + "/" + x.ref.Name +
			": a scraper should be asked for a right of the workload's own namespace that reads metrics only (e.g. namespace=" + x.ref.Namespace + ",resource=services,subresource=metrics,name=NAME); grant more by hand only after checking who may then read what"
		return g
	}
	role := "rbac-proxy-scrape-" + ra.Resource
	create := []string{"kubectl", "create", "role", role, "-n", ra.Namespace, "--verb=get", "--resource=" + resource}
	if ra.Name != "" {
		create = append(create, "--resource-name="+ra.Name)
	}
	g.fix = command(create...) + " && " + command("kubectl", "create", "rolebinding", role, "-n", ra.Namespace, "--role="+role, s.subjectFlag())
	return g
}

// apiServerPaths are the API server's own non-resource paths beside /metrics: a grant of get on a
// non-resource URL is one on every server that asks the API server, the API server's too.
var apiServerPaths = []string{"/logs", "/debug", "/api", "/apis", "/openapi", "/livez", "/readyz", "/healthz", "/version", "/flowcontrol"}

// pathGrant is the ClusterRole and binding that let the scraper get the path, or what to review
// when the path is one of the API server's own.
func pathGrant(path string, x *assessed, s Scraper) grant {
	g := grant{asked: "get " + path}
	for _, p := range apiServerPaths {
		if path == p || strings.HasPrefix(path, p+"/") {
			g.sensitive = "; " + path + " (the first of " + inject.AnnotationAllowPaths + ") is also a path of the API server's, a sensitive right: no command to grant it is given"
			g.fix = "review " + inject.AnnotationAllowPaths + " of " + x.ref.Kind + " " + x.ref.Namespace + "/" + x.ref.Name + ": a grant of get on " + path + " is one on the API server's " + path + " too"
			return g
		}
	}
	g.fix = command("kubectl", "create", "clusterrole", "rbac-proxy-metrics-reader", "--verb=get", "--non-resource-url="+path) + " && " +
		command("kubectl", "create", "clusterrolebinding", "rbac-proxy-metrics-reader-"+bindingSuffix(s), "--clusterrole=rbac-proxy-metrics-reader", s.subjectFlag())
	return g
}

// subjectFlag is the kubectl create rolebinding flag that names the scraper.
func (s Scraper) subjectFlag() string {
	if s.ServiceAccount != "" {
		return "--serviceaccount=" + s.Namespace + ":" + s.ServiceAccount
	}
	return "--user=" + s.User
}

// bindingSuffix names a binding after the scraper.
func bindingSuffix(s Scraper) string {
	if s.ServiceAccount != "" {
		return s.Namespace + "-" + s.ServiceAccount
	}
	return strings.NewReplacer(":", "-", "@", "-", "/", "-").Replace(s.User)
}

// scrapePath is the path a scraper of the policy's proxy asks for, as scrape-config prints it;
// /metrics when the allowed paths are patterns only (then no scrape of it works, and the rules
// judge the default).
func scrapePath(p *inject.Policy) string {
	path, err := p.ScrapePath()
	if err != nil {
		return inject.DefaultScrapePath
	}
	return path
}
