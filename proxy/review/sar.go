package review

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
)

type sarResult struct {
	decision authorizer.Decision
	reason   string
}

// sarAuthorizer decides with SubjectAccessReviews, cached by the complete
// set of attributes (user, groups, extra and what is asked).
type sarAuthorizer struct {
	client  SubjectAccessReviewer
	cache   *reviewCache[sarResult]
	metrics *metrics
}

func newSARAuthorizer(client SubjectAccessReviewer, c config.CacheConfig, timeout time.Duration, m *metrics) *sarAuthorizer {
	ttl := func(r sarResult) time.Duration {
		if r.decision == authorizer.DecisionAllow {
			return c.AuthorizedTTL
		}
		return c.UnauthorizedTTL
	}
	cache := newReviewCache(ttl, c.StaleTTL, timeout, c.MaxEntries)
	cache.negative = func(r sarResult) bool { return r.decision != authorizer.DecisionAllow }
	return &sarAuthorizer{client: client, cache: cache, metrics: m}
}

// Authorize implements authorizer.Authorizer.
func (s *sarAuthorizer) Authorize(ctx context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
	res, how, err := s.cache.get(ctx, sarKey(a), func(ctx context.Context) (sarResult, error) {
		return s.review(ctx, a)
	})
	s.metrics.cache.WithLabelValues("subjectaccessreview", string(how)).Inc()
	if err != nil {
		return authorizer.DecisionNoOpinion, "", fmt.Errorf("creating the SubjectAccessReview: %w", err)
	}
	return res.decision, res.reason, nil
}

func (s *sarAuthorizer) review(ctx context.Context, a authorizer.Attributes) (sarResult, error) {
	start := time.Now()
	out, err := s.client.Create(ctx, sarFor(a), metav1.CreateOptions{})
	s.metrics.review("subjectaccessreview", start, err)
	if err != nil {
		return sarResult{}, err
	}
	switch {
	case out.Status.Allowed:
		return sarResult{authorizer.DecisionAllow, out.Status.Reason}, nil
	case out.Status.Denied:
		return sarResult{authorizer.DecisionDeny, out.Status.Reason}, nil
	}
	return sarResult{authorizer.DecisionNoOpinion, out.Status.Reason}, nil
}

func sarFor(a authorizer.Attributes) *authzv1.SubjectAccessReview {
	u := a.GetUser()
	spec := authzv1.SubjectAccessReviewSpec{User: u.GetName(), UID: u.GetUID(), Groups: u.GetGroups()}
	if extra := u.GetExtra(); len(extra) > 0 {
		spec.Extra = make(map[string]authzv1.ExtraValue, len(extra))
		for k, v := range extra {
			spec.Extra[k] = v
		}
	}
	if a.IsResourceRequest() {
		spec.ResourceAttributes = &authzv1.ResourceAttributes{
			Namespace:   a.GetNamespace(),
			Verb:        a.GetVerb(),
			Group:       a.GetAPIGroup(),
			Version:     a.GetAPIVersion(),
			Resource:    a.GetResource(),
			Subresource: a.GetSubresource(),
			Name:        a.GetName(),
		}
	} else {
		spec.NonResourceAttributes = &authzv1.NonResourceAttributes{Path: a.GetPath(), Verb: a.GetVerb()}
	}
	return &authzv1.SubjectAccessReview{Spec: spec}
}

// sarKey encodes every attribute that goes into the review, each
// length-prefixed so that no two different reviews share a key.
func sarKey(a authorizer.Attributes) string {
	var b strings.Builder
	b.Grow(256)
	field := func(s string) {
		b.WriteString(strconv.Itoa(len(s)))
		b.WriteByte(':')
		b.WriteString(s)
	}
	u := a.GetUser()
	field(u.GetName())
	field(u.GetUID())
	groups := u.GetGroups()
	b.WriteString(strconv.Itoa(len(groups)))
	for _, g := range groups {
		field(g)
	}
	extra := u.GetExtra()
	b.WriteString(strconv.Itoa(len(extra)))
	if len(extra) > 0 {
		keys := make([]string, 0, len(extra))
		for k := range extra {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			field(k)
			b.WriteString(strconv.Itoa(len(extra[k])))
			for _, v := range extra[k] {
				field(v)
			}
		}
	}
	if a.IsResourceRequest() {
		b.WriteByte('R')
		for _, s := range []string{a.GetVerb(), a.GetNamespace(), a.GetAPIGroup(), a.GetAPIVersion(), a.GetResource(), a.GetSubresource(), a.GetName()} {
			field(s)
		}
	} else {
		b.WriteByte('N')
		field(a.GetVerb())
		field(a.GetPath())
	}
	return b.String()
}
