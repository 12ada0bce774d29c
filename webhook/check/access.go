package check

import (
	"fmt"
	"strings"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
	"github.com/rbac-proxy/rbac-proxy/webhook"
)

// Scraper is an identity Prometheus scrapes as: a user and the groups the API server gives it.
type Scraper struct {
	User   string
	Groups []string
	// Namespace and ServiceAccount are set for a ServiceAccount's user.
	Namespace, ServiceAccount string
}

const serviceAccountPrefix = "system:serviceaccount:"

// ParseScraper reads --scraper: system:serviceaccount:NS:NAME gets the groups the API server
// gives every ServiceAccount token, any other user system:authenticated.
func ParseScraper(s string) (Scraper, error) {
	if s == "" || strings.ContainsAny(s, " \t\n") {
		return Scraper{}, fmt.Errorf("allowed: a user name without white space, e.g. %sNAMESPACE:NAME", serviceAccountPrefix)
	}
	rest, ok := strings.CutPrefix(s, serviceAccountPrefix)
	if !ok {
		return Scraper{User: s, Groups: []string{"system:authenticated"}}, nil
	}
	ns, name, ok := strings.Cut(rest, ":")
	if !ok || len(validation.IsDNS1123Label(ns)) > 0 || len(validation.IsDNS1123Subdomain(name)) > 0 {
		return Scraper{}, fmt.Errorf("allowed: %sNAMESPACE:NAME with a namespace and ServiceAccount name", serviceAccountPrefix)
	}
	return Scraper{User: s, Namespace: ns, ServiceAccount: name,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}}, nil
}

// ref is what to grant rights to: the ServiceAccount, or the user.
func (s Scraper) ref() ObjectRef {
	if s.ServiceAccount != "" {
		return ObjectRef{Kind: "ServiceAccount", Namespace: s.Namespace, Name: s.ServiceAccount}
	}
	return ObjectRef{Kind: "User", Name: s.User}
}

// ruleProxyAccess: the Pod's ServiceAccount may create the TokenReviews (and, when the proxy
// makes them, SubjectAccessReviews) its proxy makes: webhook.AccessChecker's own question.
func ruleProxyAccess(a *analysis, x *assessed) {
	if !x.protected() {
		return
	}
	if a.c.Reviews == nil {
		a.notChecked(CodeProxyCannotReview, x.ref.Namespace, "no SubjectAccessReviews may be created")
		return
	}
	if a.access == nil {
		a.access = &webhook.AccessChecker{Client: a.c.Reviews, TTL: time.Hour}
	}
	sa := x.subject.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	missing, err := a.access.Missing(a.ctx, x.ref.Namespace, sa, x.policy.MakesSARs())
	if err != nil {
		a.notChecked(CodeProxyCannotReview, x.ref.Namespace, reviewRefusal(err))
		return
	}
	if len(missing) == 0 {
		return
	}
	a.find(CodeProxyCannotReview, ObjectRef{Kind: "ServiceAccount", Namespace: x.ref.Namespace, Name: sa}, x,
		fmt.Sprintf("ServiceAccount %s of %s %s may not create %s, so its proxy refuses every caller", sa, x.ref.Kind, x.ref.Name, strings.Join(missing, ", ")),
		command("kubectl", "create", "clusterrolebinding", "rbac-proxy-"+x.ref.Namespace+"-"+sa, "--clusterrole=system:auth-delegator", "--serviceaccount="+x.ref.Namespace+":"+sa))
}

// reviewRefusal says why a SubjectAccessReview could not be asked.
func reviewRefusal(err error) string {
	if apierrors.IsForbidden(err) {
		return "may not create subjectaccessreviews.authorization.k8s.io"
	}
	return err.Error()
}

// ruleScraperAccess: every --scraper may do what the proxy of a workload with authz sar asks
// of it: get on its resource attributes, or on the path.
func ruleScraperAccess(a *analysis, x *assessed) {
	if !x.protected() || x.policy.Authz != config.AuthzSAR || len(a.c.Scrapers) == 0 {
		return
	}
	if a.c.Reviews == nil {
		a.notChecked(CodeScraperForbidden, x.ref.Namespace, "no SubjectAccessReviews may be created")
		return
	}
	p := x.policy
	for _, s := range a.c.Scrapers {
		spec := authorizationv1.SubjectAccessReviewSpec{User: s.User, Groups: s.Groups}
		var g grant
		if ra := p.ResourceAttributes; ra != nil {
			spec.ResourceAttributes = &authorizationv1.ResourceAttributes{Namespace: ra.Namespace, Verb: "get", Group: ra.APIGroup, Version: ra.APIVersion, Resource: ra.Resource, Subresource: ra.Subresource, Name: ra.Name}
			g = resourceGrant(ra, x, s)
		} else {
			path := scrapePath(p)
			spec.NonResourceAttributes = &authorizationv1.NonResourceAttributes{Path: path, Verb: "get"}
			g = pathGrant(path, x, s)
		}
		sar := &authorizationv1.SubjectAccessReview{Spec: spec}
		if err := a.c.Reviews.Create(a.ctx, sar); err != nil {
			a.notChecked(CodeScraperForbidden, x.ref.Namespace, reviewRefusal(err))
			return
		}
		if sar.Status.Allowed {
			continue
		}
		gets := "it gets 403"
		if p.Tenancy != "" {
			gets = "it gets only the series of the namespaces it may read (tenancy " + string(p.Tenancy) + ")"
		}
		a.find(CodeScraperForbidden, s.ref(), x, fmt.Sprintf("%s may not %s, which the proxy of %s %s/%s asks for every scrape: %s%s", s.User, g.asked, x.ref.Kind, x.ref.Namespace, x.ref.Name, gets, g.sensitive), g.fix)
	}
}
