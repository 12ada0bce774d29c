package review

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/netip"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
)

// tokenResult is what is cached for a token.
type tokenResult struct {
	authenticated bool
	user          *user.DefaultInfo
	audiences     authenticator.Audiences
}

// tokenAuthenticator verifies bearer tokens with TokenReviews, cached by the
// SHA-256 of the token (the token itself is never kept, nor logged). A
// cached result is answered at once, whatever waits; a token that cannot be
// one is refused without a review (plausibleToken); every other review waits
// its turn in admission.
type tokenAuthenticator struct {
	client    TokenReviewer
	audiences []string
	cache     *reviewCache[tokenResult]
	admission *tokenAdmission // nil: no budget (tests)
	metrics   *metrics
}

// maxTokenBytes bounds a bearer token. A ServiceAccount token is about 1 KB,
// an OIDC token with many groups a few KB; 16 KiB is far beyond any of them
// and keeps a made-up token from costing the API server a large review.
const maxTokenBytes = 16 << 10

// plausibleToken reports whether some authenticator of the API server could
// accept token. TokenReview also reviews opaque tokens (static token files,
// bootstrap tokens, webhook authenticators), so a token is not required to
// be a JWT; only what no authenticator can accept is refused locally: an
// empty token, one longer than maxTokenBytes, and one with a byte outside
// visible ASCII (0x21-0x7E: RFC 6750's token68 is a subset; a space ends
// the token, as in the API server's own bearer token parsing).
func plausibleToken(token string) bool {
	if len(token) == 0 || len(token) > maxTokenBytes {
		return false
	}
	for i := 0; i < len(token); i++ {
		if c := token[i]; c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

// errReviewFailed marks a TokenReview that got no answer (as opposed to a
// token the API server rejected).
var errReviewFailed = errors.New("the bearer token could not be reviewed")

// errMalformedToken: the bearer token cannot be one (see plausibleToken).
var errMalformedToken = errors.New("the bearer token is empty, too long or not visible ASCII: refused without a review")

func newTokenAuthenticator(client TokenReviewer, audiences []string, c config.CacheConfig, timeout time.Duration, m *metrics) *tokenAuthenticator {
	ttl := func(r tokenResult) time.Duration {
		if r.authenticated {
			return c.TokenSuccessTTL
		}
		return c.TokenFailureTTL
	}
	cache := newReviewCache(ttl, c.StaleTTL, timeout, c.MaxEntries)
	cache.negative = func(r tokenResult) bool { return !r.authenticated }
	return &tokenAuthenticator{
		client:    client,
		audiences: audiences,
		cache:     cache,
		metrics:   m,
	}
}

// AuthenticateToken implements authenticator.Token, for a caller of unknown
// address.
func (a *tokenAuthenticator) AuthenticateToken(ctx context.Context, token string) (*authenticator.Response, bool, error) {
	return a.authenticate(ctx, token, netip.Addr{})
}

// authenticate verifies token for a client at addr (see clientKey).
func (a *tokenAuthenticator) authenticate(ctx context.Context, token string, addr netip.Addr) (*authenticator.Response, bool, error) {
	sum := sha256.Sum256([]byte(token))
	key := string(sum[:])
	res, found := a.cache.fresh(key)
	how := lookupHit
	if !found {
		if !plausibleToken(token) {
			a.metrics.tokenRefused.WithLabelValues("malformed").Inc()
			if a.admission != nil {
				a.admission.rejected(addr)
			}
			return nil, false, errMalformedToken
		}
		known := a.cache.known(key)
		var err error
		res, how, err = a.cache.get(ctx, key, func(ctx context.Context) (tokenResult, error) {
			if a.admission != nil {
				if err := a.admission.admit(ctx, addr, known); err != nil {
					a.metrics.tokenRefused.WithLabelValues("throttled").Inc()
					return tokenResult{}, err
				}
			}
			r, err := a.review(ctx, token)
			if err == nil && !r.authenticated && a.admission != nil {
				a.admission.rejected(addr)
			}
			return r, err
		})
		if err != nil {
			a.metrics.cache.WithLabelValues("tokenreview", string(how)).Inc()
			return nil, false, fmt.Errorf("%w: %w", errReviewFailed, err)
		}
	}
	a.metrics.cache.WithLabelValues("tokenreview", string(how)).Inc()
	if !res.authenticated {
		return nil, false, nil
	}
	return &authenticator.Response{User: res.user, Audiences: res.audiences}, true, nil
}

func (a *tokenAuthenticator) review(ctx context.Context, token string) (tokenResult, error) {
	tr := &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token, Audiences: a.audiences}}
	start := time.Now()
	out, err := a.client.Create(ctx, tr, metav1.CreateOptions{})
	a.metrics.review("tokenreview", start, err)
	if err != nil {
		return tokenResult{}, err
	}
	st := out.Status
	if !st.Authenticated || st.Error != "" {
		return tokenResult{}, nil
	}
	if len(a.audiences) > 0 && len(authenticator.Audiences(a.audiences).Intersect(st.Audiences)) == 0 {
		// The API server answered for audiences we did not ask for.
		return tokenResult{}, nil
	}
	extra := make(map[string][]string, len(st.User.Extra))
	for k, v := range st.User.Extra {
		extra[k] = v
	}
	return tokenResult{
		authenticated: true,
		user: &user.DefaultInfo{
			Name:   st.User.Username,
			UID:    st.User.UID,
			Groups: st.User.Groups,
			Extra:  extra,
		},
		audiences: st.Audiences,
	}, nil
}
