package webhook

import (
	"context"
	"fmt"
	"sync"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/util/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// AccessChecker asks the API server, with SubjectAccessReviews, whether a ServiceAccount may create
// the TokenReviews and SubjectAccessReviews the proxy makes with its token (what the
// system:auth-delegator ClusterRole grants). Answers are cached per ServiceAccount for TTL.
type AccessChecker struct {
	Client client.Writer
	TTL    time.Duration
	// MaxEntries bounds the cache, the least recently used answer going first; 0 means 10000.
	MaxEntries int
	// Clock, when set, is what the cache's expiry reads instead of the time of day.
	Clock cache.Clock

	once    sync.Once
	answers *cache.LRUExpireCache
}

type accessKey struct {
	namespace, serviceAccount string
	needSAR                   bool
}

// reviewAPI is one API the proxy calls with the Pod's ServiceAccount.
type reviewAPI struct {
	group, resource string
}

// Missing returns the review APIs ("tokenreviews.authentication.k8s.io", ...) the ServiceAccount
// cannot create; needSAR adds subjectaccessreviews (authz=sar). Errors are not cached.
func (a *AccessChecker) Missing(ctx context.Context, namespace, serviceAccount string, needSAR bool) ([]string, error) {
	if serviceAccount == "" {
		serviceAccount = "default"
	}
	a.once.Do(func() {
		max := a.MaxEntries
		if max == 0 {
			max = 10000
		}
		if a.Clock == nil {
			a.answers = cache.NewLRUExpireCache(max)
		} else {
			a.answers = cache.NewLRUExpireCacheWithClock(max, a.Clock)
		}
	})
	key := accessKey{namespace, serviceAccount, needSAR}
	if missing, ok := a.answers.Get(key); ok {
		return missing.([]string), nil
	}

	apis := []reviewAPI{{"authentication.k8s.io", "tokenreviews"}}
	if needSAR {
		apis = append(apis, reviewAPI{"authorization.k8s.io", "subjectaccessreviews"})
	}
	var missing []string
	for _, api := range apis {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:   "system:serviceaccount:" + namespace + ":" + serviceAccount,
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Verb: "create", Group: api.group, Resource: api.resource,
			},
		}}
		if err := a.Client.Create(ctx, sar); err != nil {
			return nil, fmt.Errorf("checking whether %s can create %s.%s: %w", sar.Spec.User, api.resource, api.group, err)
		}
		if !sar.Status.Allowed {
			missing = append(missing, api.resource+"."+api.group)
		}
	}

	a.answers.Add(key, missing, a.TTL)
	return missing, nil
}
