package webhook

import (
	"context"
	"fmt"
	"sync"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// AccessChecker asks the API server, with SubjectAccessReviews, whether a ServiceAccount may create
// the TokenReviews and SubjectAccessReviews the proxy makes with its token (what the
// system:auth-delegator ClusterRole grants). Answers are cached per ServiceAccount for TTL.
type AccessChecker struct {
	Client client.Writer
	TTL    time.Duration
	// MaxEntries bounds the cache; when full it is emptied. 0 means 10000.
	MaxEntries int
	Now        func() time.Time

	mu      sync.Mutex
	entries map[accessKey]accessEntry
}

type accessKey struct {
	namespace, serviceAccount string
	needSAR                   bool
}

type accessEntry struct {
	missing []string
	expires time.Time
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
	key := accessKey{namespace, serviceAccount, needSAR}
	now := a.now()
	a.mu.Lock()
	if e, ok := a.entries[key]; ok && now.Before(e.expires) {
		a.mu.Unlock()
		return e.missing, nil
	}
	a.mu.Unlock()

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

	a.mu.Lock()
	defer a.mu.Unlock()
	max := a.MaxEntries
	if max == 0 {
		max = 10000
	}
	if a.entries == nil || len(a.entries) >= max {
		a.entries = map[accessKey]accessEntry{}
	}
	a.entries[key] = accessEntry{missing: missing, expires: now.Add(a.TTL)}
	return missing, nil
}

func (a *AccessChecker) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}
