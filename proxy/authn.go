package proxy

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/request/bearertoken"
	"k8s.io/apiserver/pkg/authentication/user"
)

// TokenReviewer creates TokenReviews; the typed client-go client is one.
type TokenReviewer interface {
	Create(ctx context.Context, tr *authnv1.TokenReview, opts metav1.CreateOptions) (*authnv1.TokenReview, error)
}

// tokenResult is what is cached for a token.
type tokenResult struct {
	authenticated bool
	user          *user.DefaultInfo
	audiences     authenticator.Audiences
}

// tokenAuthenticator verifies bearer tokens with TokenReviews, cached by the
// SHA-256 of the token (the token itself is never kept, nor logged).
type tokenAuthenticator struct {
	client    TokenReviewer
	audiences []string
	cache     *reviewCache[tokenResult]
	metrics   *metrics
}

func newTokenAuthenticator(client TokenReviewer, audiences []string, c CacheConfig, timeout time.Duration, m *metrics) *tokenAuthenticator {
	ttl := func(r tokenResult) time.Duration {
		if r.authenticated {
			return c.TokenSuccessTTL
		}
		return c.TokenFailureTTL
	}
	return &tokenAuthenticator{
		client:    client,
		audiences: audiences,
		cache:     newReviewCache(ttl, c.StaleTTL, timeout, c.MaxEntries),
		metrics:   m,
	}
}

// AuthenticateToken implements authenticator.Token.
func (a *tokenAuthenticator) AuthenticateToken(ctx context.Context, token string) (*authenticator.Response, bool, error) {
	sum := sha256.Sum256([]byte(token))
	res, how, err := a.cache.get(ctx, string(sum[:]), func(ctx context.Context) (tokenResult, error) {
		return a.review(ctx, token)
	})
	a.metrics.cache.WithLabelValues("tokenreview", string(how)).Inc()
	if err != nil {
		return nil, false, fmt.Errorf("%w: %w", errReviewFailed, err)
	}
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

// requestAuthenticator identifies a caller by client certificate first (no
// TokenReview is made when a valid certificate is presented), then by bearer
// token. Either may be absent.
type requestAuthenticator struct {
	x509  authenticator.Request // nil without --client-ca-file
	token authenticator.Request // nil when tokens cannot be reviewed
}

// errReviewFailed marks a TokenReview that got no answer (as opposed to a
// token the API server rejected).
var errReviewFailed = errors.New("the bearer token could not be reviewed")

// errNoCredentials is returned when the request carries nothing to verify.
var errNoCredentials = errors.New("no client certificate or bearer token")

// authenticate returns the caller, the method that identified it (or was
// attempted: x509, token, none) and an error when it is not authenticated.
func (a requestAuthenticator) authenticate(r *http.Request) (user.Info, string, error) {
	method := "none"
	var certErr error
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		method = "x509"
		if a.x509 == nil {
			certErr = errors.New("client certificates are not accepted (no --client-ca-file)")
		} else {
			resp, ok, err := a.x509.AuthenticateRequest(r)
			if ok {
				return resp.User, method, nil
			}
			if err == nil {
				err = errors.New("client certificate has no common name")
			}
			certErr = fmt.Errorf("client certificate: %w", err)
		}
	}
	if hasBearer(r) {
		method = "token"
		if a.token == nil {
			return nil, method, errors.New("bearer tokens are not accepted (no API server configured)")
		}
		resp, ok, err := a.token.AuthenticateRequest(r)
		if ok {
			return resp.User, method, nil
		}
		if err == nil {
			err = errors.New("invalid bearer token")
		}
		return nil, method, err
	}
	if certErr != nil {
		return nil, method, certErr
	}
	return nil, method, errNoCredentials
}

func hasBearer(r *http.Request) bool {
	return r.Header.Get("Authorization") != ""
}

func newBearerAuthenticator(t authenticator.Token) authenticator.Request {
	return bearertoken.New(t)
}
