package review

import (
	"context"

	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
)

// Tenants decides, for --tenancy=namespace, which namespaces' series a
// caller that is not allowed the whole endpoint may see: "may it <verb>
// <resource> in namespace N", a SubjectAccessReview per namespace. The
// reviews go through the SAR authorizer of every other decision, so they are
// cached by the same TTLs, coalesced with concurrent scrapes of the same
// caller, counted in the same metrics and bounded by the same share of the
// API budget. Static rules do not answer them: --allowed-users and a static
// rule allow the whole endpoint or nothing.
type Tenants struct {
	sar                   *sarAuthorizer
	verb, group, resource string
}

func newTenants(sar *sarAuthorizer, t config.Tenancy) *Tenants {
	return &Tenants{sar: sar, verb: t.Verb, group: t.APIGroup, resource: t.Resource}
}

// Allow is the tenancy.Allow of u: whether u may see the series of
// namespace. An error (no review could be made, and no result within
// --stale-cache-ttl) is returned, and the filter fails closed on it.
//
// A value that cannot be a namespace's name is never reviewed but denied:
// an empty one would ask about every namespace at once (a SubjectAccessReview
// without a namespace is a cluster-wide one), and an exposition whose labels
// make up names must not cost a review each.
func (t *Tenants) Allow(u user.Info) func(ctx context.Context, namespace string) (bool, error) {
	return func(ctx context.Context, namespace string) (bool, error) {
		if len(apivalidation.ValidateNamespaceName(namespace, false)) > 0 {
			return false, nil
		}
		d, _, err := t.sar.Authorize(ctx, &authorizer.AttributesRecord{
			User:            u,
			Verb:            t.verb,
			Namespace:       namespace,
			APIGroup:        t.group,
			Resource:        t.resource,
			ResourceRequest: true,
		})
		if err != nil {
			return false, err
		}
		return d == authorizer.DecisionAllow, nil
	}
}
