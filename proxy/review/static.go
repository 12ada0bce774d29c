package review

import (
	"context"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
)

// staticAuthorizer allows requests from the --allowed-users/--allowed-groups
// subjects and requests matching a config-file static rule, locally. It has
// no opinion on anything else.
type staticAuthorizer struct {
	users  map[string]bool
	groups map[string]bool
	rules  []config.StaticRule
}

func newStaticAuthorizer(allowed config.AllowedSubjects, rules []config.StaticRule) *staticAuthorizer {
	s := &staticAuthorizer{users: map[string]bool{}, groups: map[string]bool{}, rules: rules}
	for _, u := range allowed.Users {
		s.users[u] = true
	}
	for _, g := range allowed.Groups {
		s.groups[g] = true
	}
	return s
}

// empty reports whether the authorizer can never allow anything.
func (s *staticAuthorizer) empty() bool {
	return len(s.users) == 0 && len(s.groups) == 0 && len(s.rules) == 0
}

// Authorize implements authorizer.Authorizer.
func (s *staticAuthorizer) Authorize(_ context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
	u := a.GetUser()
	if u == nil {
		return authorizer.DecisionNoOpinion, "no user", nil
	}
	if s.users[u.GetName()] {
		return authorizer.DecisionAllow, "user allowed by --allowed-users", nil
	}
	for _, g := range u.GetGroups() {
		if s.groups[g] {
			return authorizer.DecisionAllow, "group allowed by --allowed-groups", nil
		}
	}
	for i := range s.rules {
		if ruleMatches(&s.rules[i], u, a) {
			return authorizer.DecisionAllow, "allowed by a static rule", nil
		}
	}
	return authorizer.DecisionNoOpinion, "no static rule matches", nil
}

// ruleMatches reports whether every non-empty field of the rule equals the
// request's attribute.
func ruleMatches(r *config.StaticRule, u user.Info, a authorizer.Attributes) bool {
	eq := func(rule, got string) bool { return rule == "" || rule == got }
	if !eq(r.User.Name, u.GetName()) {
		return false
	}
	if len(r.User.Groups) > 0 && !anyIn(r.User.Groups, u.GetGroups()) {
		return false
	}
	return eq(r.Verb, a.GetVerb()) &&
		eq(r.Namespace, a.GetNamespace()) &&
		eq(r.APIGroup, a.GetAPIGroup()) &&
		eq(r.Resource, a.GetResource()) &&
		eq(r.Subresource, a.GetSubresource()) &&
		eq(r.Name, a.GetName()) &&
		eq(r.Path, a.GetPath()) &&
		r.ResourceRequest == a.IsResourceRequest()
}

func anyIn(want, have []string) bool {
	for _, w := range want {
		for _, h := range have {
			if w == h {
				return true
			}
		}
	}
	return false
}
