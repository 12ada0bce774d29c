package config

import (
	"net/url"
	"slices"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// OIDCConfig is kube-rbac-proxy's --oidc-* flags: one OpenID Connect issuer
// whose ID tokens the proxy verifies itself. The flags have
// kube-rbac-proxy's names, defaults and meaning (the prefixes are used as
// given: no "issuer#" prefix is added as kube-apiserver's own flags do).
type OIDCConfig struct {
	// IssuerURL is --oidc-issuer, an https:// URL; empty disables OIDC.
	IssuerURL string
	// ClientID is --oidc-clientID: the audience a token must have.
	ClientID string
	// CAFile is --oidc-ca-file: the CA bundle the issuer's certificate is
	// verified against; empty means the host's roots.
	CAFile         string
	UsernameClaim  string
	UsernamePrefix string
	// GroupsClaim is the claim (a string or a list) the groups come from;
	// empty maps no groups.
	GroupsClaim  string
	GroupsPrefix string
	// SigningAlgs are the JOSE algorithms a token may be signed with.
	SigningAlgs []string
}

// Enabled reports whether --oidc-issuer is set.
func (o OIDCConfig) Enabled() bool { return o.IssuerURL != "" }

// The --oidc-* defaults, kube-rbac-proxy's.
const (
	DefaultOIDCUsernameClaim = "email"
	DefaultOIDCGroupsClaim   = "groups"
	DefaultOIDCSigningAlg    = "RS256"
)

// JWTEnabled reports whether bearer tokens are verified by JWT
// authenticators (--oidc-issuer or --authentication-config) instead of
// TokenReviews.
func (a AuthenticationConfig) JWTEnabled() bool {
	return a.OIDC.Enabled() || a.JWTConfigFile != ""
}

// validateJWT checks what the flags alone can tell; the issuer itself (an
// https URL, the algorithms, the claims) is checked by k8s.io/apiserver's
// validation when the authenticator is built, under the same flag names.
func (a AuthenticationConfig) validateJWT() field.ErrorList {
	var errs field.ErrorList
	o := a.OIDC
	if a.JWTConfigFile != "" && o.Enabled() {
		errs = append(errs, field.Forbidden(flag("--oidc-issuer"), "--oidc-* and --authentication-config are mutually exclusive: configure the issuer as a jwt entry of the file"))
	}
	if a.JWTEnabled() && a.ServiceAccounts.Verification == SATokensLocal {
		// With JWT authenticators they alone verify tokens; the cluster's
		// issuer can be one of the file's.
		errs = append(errs, field.Forbidden(flag("--service-account-token-verification"), "local cannot be used with --oidc-issuer or --authentication-config: add the cluster's ServiceAccount issuer to the --authentication-config file instead"))
	}
	if !o.Enabled() {
		return errs
	}
	if u, err := url.Parse(o.IssuerURL); err != nil || u.Scheme != "https" || u.Host == "" {
		errs = append(errs, field.Invalid(flag("--oidc-issuer"), o.IssuerURL, "must be an https:// URL, for example https://issuer.example.com"))
	}
	if o.ClientID == "" {
		errs = append(errs, field.Required(flag("--oidc-clientID"), "the audience tokens of --oidc-issuer must have"))
	}
	if o.UsernameClaim == "" {
		errs = append(errs, field.Required(flag("--oidc-username-claim"), "the claim the user name comes from, for example email or sub"))
	}
	if o.GroupsClaim == "" && o.GroupsPrefix != "" {
		errs = append(errs, field.Invalid(flag("--oidc-groups-prefix"), o.GroupsPrefix, "requires --oidc-groups-claim"))
	}
	if len(o.SigningAlgs) == 0 || slices.Contains(o.SigningAlgs, "") {
		errs = append(errs, field.Required(flag("--oidc-sign-alg"), "at least one algorithm, for example RS256"))
	}
	return errs
}

// oidcFlagsWithoutIssuer are the --oidc-* flags that only mean something
// with --oidc-issuer.
var oidcFlagsWithoutIssuer = []string{"oidc-clientID", "oidc-groups-claim", "oidc-username-claim", "oidc-username-prefix", "oidc-groups-prefix", "oidc-sign-alg", "oidc-ca-file"}
