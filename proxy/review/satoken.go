package review

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/go-logr/logr"
	utilcache "k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	apiserverjwt "k8s.io/apiserver/pkg/authentication/token/jwt"
	"k8s.io/apiserver/pkg/authentication/user"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
)

// legacyIssuer is the issuer of Secret-based ServiceAccount tokens.
const legacyIssuer = "kubernetes/serviceaccount"

// saSigningAlgs are the algorithms the API server signs ServiceAccount
// tokens with (RSA and ECDSA keys, k8s.io/kubernetes pkg/serviceaccount).
var saSigningAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.ES384, jose.ES512}

// errNotLocal: the token is not one local verification vouches for, and
// goes on to a TokenReview.
var errNotLocal = errors.New("not verified locally")

// saClaims are the private claims of a bound ServiceAccount token, as
// k8s.io/kubernetes pkg/serviceaccount writes them (not an importable
// module, hence declared here).
type saClaims struct {
	Kubernetes struct {
		Namespace      string `json:"namespace"`
		ServiceAccount saRef  `json:"serviceaccount"`
		Pod            *saRef `json:"pod"`
		Node           *saRef `json:"node"`
	} `json:"kubernetes.io"`
}

type saRef struct {
	Name string `json:"name"`
	UID  string `json:"uid"`
}

// saTokenAuthenticator verifies the ServiceAccount tokens of the cluster's
// issuer locally and maps them to the identity a TokenReview gives. A
// verified token is remembered (apimachinery's LRUExpireCache, by the
// SHA-256 of the token and the key set it was verified with) for the token
// cache TTL and never past its expiry: verifying a signature costs about a
// hundred times a lookup. Refusals are not remembered.
type saTokenAuthenticator struct {
	keys      *issuerKeys
	audiences authenticator.Audiences
	policy    config.ServiceAccountTokens
	now       func() time.Time
	metrics   *metrics
	ttl       time.Duration
	cache     *utilcache.LRUExpireCache // verifiedKey → *authenticator.Response
}

type verifiedKey struct {
	keys  uint64 // the key set's generation: a new set verifies again
	token [sha256.Size]byte
}

// clockFunc is a func as the cache's clock.
type clockFunc func() time.Time

func (f clockFunc) Now() time.Time { return f() }

// authenticate returns the identity of a token verified locally, an error
// that refuses it, or errNotLocal when a TokenReview is to decide: a token
// that is not a JWT of the cluster's issuer, or one the policy sends there.
func (a *saTokenAuthenticator) authenticate(token string) (*authenticator.Response, error) {
	key := verifiedKey{keys: a.keys.generation(), token: sha256.Sum256([]byte(token))}
	if resp, ok := a.cache.Get(key); ok {
		a.metrics.saTokens.WithLabelValues("cached").Inc()
		return resp.(*authenticator.Response), nil
	}
	resp, exp, result, err := a.verify(token)
	a.metrics.saTokens.WithLabelValues(result).Inc()
	if err == nil {
		if ttl := min(a.ttl, exp.Sub(a.now())); ttl > 0 {
			a.cache.Add(key, resp, ttl)
		}
	}
	return resp, err
}

// verify returns the identity of token and its expiry, the result for the
// metric, or the error that refuses it (errNotLocal: reviewed).
func (a *saTokenAuthenticator) verify(token string) (*authenticator.Response, time.Time, string, error) {
	var never time.Time
	tok, err := jwt.ParseSigned(token, saSigningAlgs)
	if err != nil {
		return nil, never, "other", errNotLocal
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, never, "other", errNotLocal
	}
	issuer := a.keys.Issuer()
	switch unverified.Issuer {
	case issuer:
	case legacyIssuer:
		if a.policy.Legacy == config.SATokensSendToReview {
			return nil, never, "reviewed", errNotLocal
		}
		return nil, never, "refused", errors.New("a Secret-based ServiceAccount token: refused (--service-account-legacy-tokens=refuse)")
	default:
		return nil, never, "other", errNotLocal
	}

	var public jwt.Claims
	var private saClaims
	verified := false
	for _, key := range a.keys.lookup(tok.Headers[0].KeyID) {
		if tok.Claims(key.Key, &public, &private) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, never, "refused", fmt.Errorf("the ServiceAccount token is not signed by a key its issuer publishes (key id %q)", tok.Headers[0].KeyID)
	}
	now := a.now()
	// The API server's own leeway for clock skew (go-jose's default, 1 min).
	if err := public.ValidateWithLeeway(jwt.Expected{Issuer: issuer, AnyAudience: jwt.Audience(a.audiences), Time: now}, jwt.DefaultLeeway); err != nil {
		return nil, never, "refused", fmt.Errorf("the ServiceAccount token: %w", err)
	}
	for _, aud := range public.Audience {
		// Such a token works against the API server too: whoever takes it
		// from a scraper holds an API credential. Only a token for the
		// proxy alone is vouched for here.
		if config.IsAPIServerAudience(aud, issuer) {
			return nil, never, "refused", fmt.Errorf("the ServiceAccount token is also for the API server (audience %q): only tokens for --auth-token-audiences alone are verified locally", aud)
		}
	}
	if public.Expiry == nil {
		return nil, never, "refused", errors.New("the ServiceAccount token has no expiry")
	}
	k := private.Kubernetes
	if k.Namespace == "" || k.ServiceAccount.Name == "" || k.ServiceAccount.UID == "" ||
		public.Subject != serviceaccount.MakeUsername(k.Namespace, k.ServiceAccount.Name) {
		return nil, never, "refused", errors.New("the ServiceAccount token names no ServiceAccount, or another than its subject")
	}
	if public.IssuedAt == nil || public.Expiry.Time().Sub(public.IssuedAt.Time()) > a.policy.MaxTokenExpiration {
		if a.policy.LongLived == config.SATokensSendToReview {
			return nil, never, "reviewed", errNotLocal
		}
		return nil, never, "refused", fmt.Errorf("the ServiceAccount token lives longer than --service-account-max-token-expiration=%v (or has no issue time)", a.policy.MaxTokenExpiration)
	}

	info := serviceaccount.ServiceAccountInfo{
		Namespace:    k.Namespace,
		Name:         k.ServiceAccount.Name,
		UID:          k.ServiceAccount.UID,
		CredentialID: apiserverjwt.CredentialIDForJTI(public.ID),
	}
	if k.Pod != nil {
		info.PodName, info.PodUID = k.Pod.Name, k.Pod.UID
	}
	if k.Node != nil {
		info.NodeName, info.NodeUID = k.Node.Name, k.Node.UID
	}
	u := info.UserInfo().(*user.DefaultInfo)
	// The API server adds it to every authenticated user (its
	// AuthenticatedGroupAdder), so TokenReview answers with it.
	u.Groups = append(u.Groups, user.AllAuthenticated)
	return &authenticator.Response{
		User:      u,
		Audiences: a.audiences.Intersect(authenticator.Audiences(public.Audience)),
	}, public.Expiry.Time(), "verified", nil
}

// newLocalServiceAccounts is the local verification of cfg, nil in review
// mode. It discovers the issuer and its keys now, so the proxy needs the API
// server once to start (an outage later keeps the keys it has), and refuses
// an audience that is the API server's own issuer.
func newLocalServiceAccounts(cfg *config.Config, clients Clients, m *metrics, log logr.Logger) (*saTokenAuthenticator, error) {
	sa := cfg.Authentication.ServiceAccounts
	if sa.Verification != config.SATokensLocal {
		return nil, nil
	}
	if clients.Issuer == nil {
		return nil, errors.New("--service-account-token-verification=local: no client to read the service-account issuer with")
	}
	keys := newIssuerKeys(clients.Issuer, cfg.KubeAPI.Timeout, log)
	if err := keys.discover(context.Background()); err != nil {
		return nil, fmt.Errorf("--service-account-token-verification=local: %w", err)
	}
	for _, aud := range cfg.Authentication.Audiences {
		if config.IsAPIServerAudience(aud, keys.Issuer()) {
			return nil, fmt.Errorf("--service-account-token-verification=local: --auth-token-audiences %q is the API server's own issuer: the audience must be the proxy's own", aud)
		}
	}
	a := &saTokenAuthenticator{
		keys:      keys,
		audiences: cfg.Authentication.Audiences,
		policy:    sa,
		now:       time.Now,
		metrics:   m,
		ttl:       cfg.Cache.TokenSuccessTTL,
	}
	a.cache = utilcache.NewLRUExpireCacheWithClock(cfg.Cache.MaxEntries, clockFunc(func() time.Time { return a.now() }))
	return a, nil
}
