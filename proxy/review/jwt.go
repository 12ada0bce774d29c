package review

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/apis/apiserver"
	apiservervalidation "k8s.io/apiserver/pkg/apis/apiserver/validation"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	authenticationcel "k8s.io/apiserver/pkg/authentication/cel"
	tokenunion "k8s.io/apiserver/pkg/authentication/token/union"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/apiserver/plugin/pkg/authenticator/token/oidc"
	"k8s.io/utils/ptr"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
)

// celCompiler is shared by every JWT authenticator: a CEL environment is
// expensive to build, and the file is rebuilt on every reload.
var celCompiler = sync.OnceValue(authenticationcel.NewDefaultCompiler)

// jwtTokens verifies bearer tokens locally with k8s.io/apiserver's JWT
// authenticators, the ones behind kube-apiserver's --oidc-* flags and its
// AuthenticationConfiguration. The set in use is swapped whole when
// --authentication-config changes.
type jwtTokens struct {
	current atomic.Pointer[jwtSet]
}

func (j *jwtTokens) AuthenticateToken(ctx context.Context, token string) (*authenticator.Response, bool, error) {
	return j.current.Load().token.AuthenticateToken(ctx, token)
}

// noReservedNames refuses an identity named like one of Kubernetes' own (a
// user or group starting with "system:"): an issuer outside the cluster
// must not speak for system:masters or a ServiceAccount, which a
// SubjectAccessReview would honour as the API server's own. (kube-rbac-proxy
// passes them on; --oidc-username-prefix, --oidc-groups-prefix or a claim
// mapping keep an issuer's names apart.)
type noReservedNames struct{ authenticator.Token }

func (n noReservedNames) AuthenticateToken(ctx context.Context, token string) (*authenticator.Response, bool, error) {
	resp, ok, err := n.Token.AuthenticateToken(ctx, token)
	if err != nil || !ok {
		return resp, ok, err
	}
	if reservedName(resp.User.GetName()) {
		return nil, false, fmt.Errorf("the token's user name %q is reserved for Kubernetes' own identities (system:): map it under a prefix", resp.User.GetName())
	}
	for _, g := range resp.User.GetGroups() {
		if reservedName(g) {
			return nil, false, fmt.Errorf("the token's group %q is reserved for Kubernetes' own identities (system:): map groups under a prefix", g)
		}
	}
	return resp, true, nil
}

func reservedName(s string) bool { return strings.HasPrefix(s, "system:") }

// jwtSet is the authenticators of one configuration, fetching their
// issuers' keys until cancel.
type jwtSet struct {
	token  authenticator.Token
	health func() error
	cancel context.CancelFunc
}

// newJWTSet starts one authenticator per issuer under a context of its own,
// so that a replaced set stops fetching keys. algs nil accepts every
// algorithm the library knows (a key's own algorithm decides), as
// kube-apiserver does for its configuration file.
func newJWTSet(parent context.Context, jwts []apiserver.JWTAuthenticator, algs []string) (*jwtSet, error) {
	ctx, cancel := context.WithCancel(parent)
	if algs == nil {
		algs = oidc.AllValidSigningAlgorithms()
	}
	var tokens []authenticator.Token
	var checks []func() error
	for i, j := range jwts {
		var ca oidc.CAContentProvider
		if j.Issuer.CertificateAuthority != "" {
			c, err := dynamiccertificates.NewStaticCAContent("jwt-issuer", []byte(j.Issuer.CertificateAuthority))
			if err != nil {
				cancel()
				return nil, field.Invalid(field.NewPath("jwt").Index(i).Child("issuer", "certificateAuthority"), "<PEM>", err.Error())
			}
			ca = c
		}
		a, err := oidc.New(ctx, oidc.Options{
			JWTAuthenticator:     j,
			CAContentProvider:    ca,
			SupportedSigningAlgs: algs,
			Compiler:             celCompiler(),
		})
		if err != nil {
			cancel()
			return nil, err
		}
		tokens = append(tokens, a)
		checks = append(checks, a.HealthCheck)
	}
	return &jwtSet{
		// The first authenticator whose issuer a token names decides;
		// the others pass it on without looking at it.
		token: noReservedNames{tokenunion.NewFailOnError(tokens...)},
		health: func() error {
			var errs []error
			for _, c := range checks {
				errs = append(errs, c())
			}
			return utilerrors.NewAggregate(errs)
		},
		cancel: cancel,
	}, nil
}

// oidcFlags maps the field paths of apiserver's JWTAuthenticator
// validation to the --oidc-* flag that sets the field.
var oidcFlags = []struct{ path, flag string }{
	{"issuer.url", "--oidc-issuer"},
	{"issuer.audiences", "--oidc-clientID"},
	{"issuer.certificateAuthority", "--oidc-ca-file"},
	{"claimMappings.username.claim", "--oidc-username-claim"},
	{"claimMappings.username.prefix", "--oidc-username-prefix"},
	{"claimMappings.groups.claim", "--oidc-groups-claim"},
	{"claimMappings.groups.prefix", "--oidc-groups-prefix"},
}

// oidcAuthenticator is the JWTAuthenticator of the --oidc-* flags, as
// kube-rbac-proxy builds it: the client ID the one audience, the claims
// and prefixes as given. apiserver's validation checks it, and its errors
// name the flag.
func oidcAuthenticator(o config.OIDCConfig) (apiserver.JWTAuthenticator, error) {
	j := apiserver.JWTAuthenticator{
		Issuer: apiserver.Issuer{URL: o.IssuerURL, Audiences: []string{o.ClientID}},
		ClaimMappings: apiserver.ClaimMappings{
			Username: apiserver.PrefixedClaimOrExpression{Claim: o.UsernameClaim, Prefix: ptr.To(o.UsernamePrefix)},
		},
	}
	if o.GroupsClaim != "" {
		j.ClaimMappings.Groups = apiserver.PrefixedClaimOrExpression{Claim: o.GroupsClaim, Prefix: ptr.To(o.GroupsPrefix)}
	}
	var errs field.ErrorList
	if o.CAFile != "" {
		b, err := os.ReadFile(o.CAFile)
		if err != nil {
			errs = append(errs, field.Invalid(field.NewPath("--oidc-ca-file"), o.CAFile, err.Error()))
		}
		j.Issuer.CertificateAuthority = string(b)
	}
	allowed := oidc.AllValidSigningAlgorithms()
	for _, alg := range o.SigningAlgs {
		if !slices.Contains(allowed, alg) {
			errs = append(errs, field.NotSupported(field.NewPath("--oidc-sign-alg"), alg, allowed))
		}
	}
	_, verrs := apiservervalidation.CompileAndValidateJWTAuthenticator(celCompiler(), j, nil)
	for _, e := range verrs {
		e := *e
		for _, m := range oidcFlags {
			if e.Field == m.path || strings.HasPrefix(e.Field, m.path+"[") {
				e.Field = m.flag
				if m.flag == "--oidc-ca-file" {
					e.BadValue = o.CAFile
				}
				break
			}
		}
		errs = append(errs, &e)
	}
	return j, errs.ToAggregate()
}

// newJWTTokens is the token authenticator of --oidc-issuer or
// --authentication-config, started under ctx; nil when neither is set.
func newJWTTokens(ctx context.Context, cfg config.AuthenticationConfig, reloadEvery time.Duration, reg prometheus.Registerer, log logr.Logger) (authenticator.Token, error) {
	switch {
	case cfg.OIDC.Enabled():
		j, err := oidcAuthenticator(cfg.OIDC)
		if err != nil {
			return nil, err
		}
		set, err := newJWTSet(ctx, []apiserver.JWTAuthenticator{j}, cfg.OIDC.SigningAlgs)
		if err != nil {
			return nil, err
		}
		return set.token, nil
	case cfg.JWTConfigFile != "":
		f, err := newAuthnConfigFile(ctx, cfg.JWTConfigFile, reg, log.WithName("authentication-config"))
		if err != nil {
			return nil, fmt.Errorf("--authentication-config %s: %w", cfg.JWTConfigFile, err)
		}
		go f.run(ctx, reloadEvery)
		return f.tokens, nil
	}
	return nil, nil
}
