package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// SATokenVerification says who verifies ServiceAccount tokens.
type SATokenVerification string

const (
	// SATokensReview sends every bearer token to a TokenReview
	// (kube-rbac-proxy's behaviour).
	SATokensReview SATokenVerification = "review"
	// SATokensLocal verifies the ServiceAccount tokens of the cluster's
	// issuer with the keys the API server publishes; other tokens are
	// reviewed.
	SATokensLocal SATokenVerification = "local"
)

// SATokenFallback says what local verification does with a ServiceAccount
// token it will not vouch for itself.
type SATokenFallback string

const (
	// SATokensRefuse refuses the token (401) without a review.
	SATokensRefuse SATokenFallback = "refuse"
	// SATokensSendToReview sends the token to a TokenReview, which also
	// checks that its ServiceAccount (and Secret, or Pod) still exist.
	SATokensSendToReview SATokenFallback = "review"
)

// ServiceAccountTokens is how ServiceAccount tokens are verified.
type ServiceAccountTokens struct {
	// Verification is review (a TokenReview for each token) or local.
	Verification SATokenVerification
	// MaxTokenExpiration is, in local mode, the longest lifetime (exp − iat)
	// a token is verified locally with; a longer-lived one (such as the
	// API server's year-long extended tokens) goes to LongLived.
	MaxTokenExpiration time.Duration
	// LongLived is what local mode does with a token that lives longer than
	// MaxTokenExpiration.
	LongLived SATokenFallback
	// Legacy is what local mode does with a Secret-based token (issuer
	// kubernetes/serviceaccount, no expiry).
	Legacy SATokenFallback
}

// DefaultSAMaxTokenExpiration is a day: the kubelet's projected tokens live
// an hour by default and at most 48 h (expirationSeconds), Prometheus
// re-reads its token file; a year-long token is refused or re-checked.
const DefaultSAMaxTokenExpiration = 24 * time.Hour

// apiServerAudiences are the audiences the API servers of common clusters
// accept their own tokens for (--api-audiences, by default the issuer):
// a token for one of them works against the API server itself, so local
// mode refuses to accept them. The discovered issuer is refused at start.
var apiServerAudiences = []string{
	"https://kubernetes.default.svc",
	"https://kubernetes.default.svc.cluster.local",
	"kubernetes.default.svc",
	"kubernetes.default.svc.cluster.local",
	"api",
}

// IsAPIServerAudience reports whether aud is one that an API server
// accepts its own tokens for, by convention or because it is the issuer.
func IsAPIServerAudience(aud, issuer string) bool {
	aud = strings.TrimSuffix(aud, "/")
	if issuer != "" && aud == strings.TrimSuffix(issuer, "/") {
		return true
	}
	for _, a := range apiServerAudiences {
		if aud == a {
			return true
		}
	}
	return false
}

// addServiceAccountFlags registers the --service-account-* flags, named
// after kube-apiserver's flags for the same things.
func (f *Flags) addServiceAccountFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.SATokenVerification, "service-account-token-verification", string(SATokensReview), "How ServiceAccount tokens are verified: review (a TokenReview each, cached) or local (signature, issuer, audience and expiry checked with the keys the API server publishes at /openid/v1/jwks; no TokenReview, no revocation before expiry: see docs/security.md). local needs --auth-token-audiences of the proxy's own. Other tokens are reviewed.")
	fs.DurationVar(&f.SAMaxTokenExpiration, "service-account-max-token-expiration", DefaultSAMaxTokenExpiration, "With local verification, the longest lifetime (exp − iat) a ServiceAccount token is accepted with; a longer-lived one goes to --service-account-long-lived-tokens.")
	fs.StringVar(&f.SALongLivedTokens, "service-account-long-lived-tokens", string(SATokensRefuse), "With local verification, what a ServiceAccount token living longer than --service-account-max-token-expiration gets: refuse (401) or review (a TokenReview).")
	fs.StringVar(&f.SALegacyTokens, "service-account-legacy-tokens", string(SATokensRefuse), "With local verification, what a Secret-based ServiceAccount token (issuer kubernetes/serviceaccount, never expires) gets: refuse (401) or review (a TokenReview).")
}

// serviceAccountTokens is the flags' ServiceAccountTokens.
func (f *Flags) serviceAccountTokens() ServiceAccountTokens {
	return ServiceAccountTokens{
		Verification:       SATokenVerification(f.SATokenVerification),
		MaxTokenExpiration: f.SAMaxTokenExpiration,
		LongLived:          SATokenFallback(f.SALongLivedTokens),
		Legacy:             SATokenFallback(f.SALegacyTokens),
	}
}

// setServiceAccountTokens is the inverse of serviceAccountTokens.
func (f *Flags) setServiceAccountTokens(s ServiceAccountTokens) {
	f.SATokenVerification, f.SAMaxTokenExpiration = string(s.Verification), s.MaxTokenExpiration
	f.SALongLivedTokens, f.SALegacyTokens = string(s.LongLived), string(s.Legacy)
}

// validateServiceAccounts checks a.ServiceAccounts; local mode requires
// --auth-token-audiences of the proxy's own.
func (a AuthenticationConfig) validateServiceAccounts() field.ErrorList {
	s, audiences := a.ServiceAccounts, a.Audiences
	var errs field.ErrorList
	switch s.Verification {
	case SATokensReview, SATokensLocal:
	default:
		errs = append(errs, field.NotSupported(flag("--service-account-token-verification"), s.Verification, []SATokenVerification{SATokensReview, SATokensLocal}))
	}
	for _, fb := range []struct {
		flag string
		v    SATokenFallback
	}{{"--service-account-long-lived-tokens", s.LongLived}, {"--service-account-legacy-tokens", s.Legacy}} {
		if fb.v != SATokensRefuse && fb.v != SATokensSendToReview {
			errs = append(errs, field.NotSupported(flag(fb.flag), fb.v, []SATokenFallback{SATokensRefuse, SATokensSendToReview}))
		}
	}
	if s.MaxTokenExpiration <= 0 {
		errs = append(errs, field.Invalid(flag("--service-account-max-token-expiration"), s.MaxTokenExpiration.String(), "must be positive"))
	}
	if s.Verification != SATokensLocal {
		return errs
	}
	if len(audiences) == 0 {
		errs = append(errs, field.Required(flag("--auth-token-audiences"), fmt.Sprintf("--service-account-token-verification=%s accepts only tokens for the proxy's own audience: without one, every token for the API server would be accepted, and anyone this proxy can see one of could use it against the API server", SATokensLocal)))
	}
	for _, aud := range audiences {
		if IsAPIServerAudience(aud, "") {
			errs = append(errs, field.Invalid(flag("--auth-token-audiences"), strings.Join(audiences, ","), fmt.Sprintf("%q is an audience of the API server itself: with local verification the audience must be the proxy's own", aud)))
		}
	}
	return errs
}
