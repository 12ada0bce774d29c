// Package review is the proxy's identity and decision steps: client certificates and
// TokenReviews behind authenticator.Request, static rules and SubjectAccessReviews behind
// authorizer.Authorizer, each review cached, coalesced and within its share of the API budget.
//
// The verified client-certificate chains are kept in apimachinery's LRUExpireCache; the review
// cache is written here (reviewCache says why in full) because the libraries' caches drop a
// result when its TTL ends, and --stale-cache-ttl serves an expired one while the API server
// cannot answer.
//
// With --service-account-token-verification=local, ServiceAccount tokens of the cluster's issuer
// are verified before any TokenReview (satoken.go): go-jose parses and verifies the JWS and the
// registered claims, k8s.io/apiserver's serviceaccount package maps the identity. Written here:
// the key set (sakeys.go), because the library key set (go-oidc's, under k8s.io/apiserver's OIDC
// authenticator) reads the discovery document's jwks_uri, an address for outside clients that
// the proxy may not reach, and reads it again for every unknown key id without a bound; and the
// private claims' struct, which k8s.io/kubernetes declares in a package that is not an importable module.
package review

import (
	"context"
	"crypto/x509"
	"fmt"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/authorization/union"
	"k8s.io/utils/clock"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
)

// Options are what the reviews need besides the configuration.
type Options struct {
	// Clients replaces the API server clients; nil builds them from
	// Config.KubeAPI, and only when a review can be needed.
	Clients *Clients
	// ClientCA returns the client CA as last loaded; nil refuses client
	// certificates.
	ClientCA func() *x509.CertPool
	// Metrics registers the reviews' metrics; nil registers them nowhere.
	Metrics prometheus.Registerer
	Logger  logr.Logger
	// Context bounds background work: fetching JWT issuers' keys and
	// reloading --authentication-config. nil: the process's lifetime.
	Context context.Context
}

// New builds the identity step (a client certificate, else a bearer token)
// and the decision step (the static rules, then with --authz=sar a
// SubjectAccessReview) of a validated configuration, and with
// --tenancy=namespace the namespaces' decision for callers the decision step
// denies (nil without it).
func New(cfg *config.Config, opts Options) (authenticator.Request, authorizer.Authorizer, *Tenants, error) {
	m := newMetrics(opts.Metrics)
	clients, tokens, err := clientsFor(cfg, opts)
	if err != nil {
		return nil, nil, nil, err
	}
	authn := &requestAuthenticator{metrics: m}
	if opts.ClientCA != nil {
		authn.x509 = newCertAuthenticator(opts.ClientCA, cfg.Cache.MaxEntries, clock.RealClock{})
	}
	ctx := opts.Context
	if ctx == nil {
		ctx = context.Background()
	}
	if authn.jwt, err = newJWTTokens(ctx, cfg.Authentication, cfg.TLS.ReloadInterval, m.reg, opts.Logger); err != nil {
		return nil, nil, nil, err
	}
	if tokens && authn.jwt == nil {
		authn.token = newTokenAuthenticator(clients.Tokens, cfg.Authentication.Audiences, cfg.Cache, cfg.KubeAPI.Timeout, m)
		// Unknown tokens are reviewed within their share of the API budget,
		// fairly among client addresses (see tokenAdmission).
		budget, _ := reviewBudgets(cfg.KubeAPI, cfg.Authorization)
		authn.token.admission = newTokenAdmission(float64(budget.QPS), budget.Burst, cfg.KubeAPI.Timeout)
		m.tokenReviewQueue(authn.token.admission.queued)
		if authn.local, err = newLocalServiceAccounts(cfg, clients, m, opts.Logger); err != nil {
			return nil, nil, nil, err
		}
	}

	var chain []union.NamedAuthorizer
	if static := newStaticAuthorizer(cfg.Authorization.Allowed, cfg.Authorization.Static); !static.empty() {
		chain = append(chain, union.NamedAuthorizer{AuthorizerName: "static", Authorizer: authorizer.AuthorizerFunc(static.Authorize)})
	}
	var sar *sarAuthorizer
	if cfg.Authorization.MakesSARs() {
		// One for both: a tenant's reviews share the cache and the budget.
		sar = newSARAuthorizer(clients.Access, cfg.Cache, cfg.KubeAPI.Timeout, m)
	}
	if cfg.Authorization.Mode == config.AuthzSAR {
		chain = append(chain, union.NamedAuthorizer{AuthorizerName: "sar", Authorizer: authorizer.AuthorizerFunc(sar.Authorize)})
	}
	authz, err := union.New(chain...)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("building the authorizer: %w", err)
	}
	var tenants *Tenants
	if cfg.Authorization.Tenancy.Mode == config.TenancyNamespace {
		tenants = newTenants(sar, cfg.Authorization.Tenancy)
	}
	return authn, authz, tenants, nil
}

// clientsFor returns the API clients and whether bearer tokens can be
// reviewed. With --authz=static and no --tenancy, client certificates or JWT
// authenticators but no kubeconfig and no in-cluster configuration, no
// client is built: such a proxy never needs an API server (without JWT
// authenticators it refuses bearer tokens).
func clientsFor(cfg *config.Config, opts Options) (Clients, bool, error) {
	if opts.Clients != nil {
		return *opts.Clients, true, nil
	}
	if !cfg.Authorization.MakesSARs() && (opts.ClientCA != nil || cfg.Authentication.JWTEnabled()) &&
		cfg.KubeAPI.Kubeconfig == "" && !inClusterAvailable() {
		if opts.Logger.GetSink() != nil && !cfg.Authentication.JWTEnabled() {
			opts.Logger.Info("bearer tokens are refused: static authorization with client certificates and no API server configured")
		}
		return Clients{}, false, nil
	}
	rc, err := kubeRESTConfig(cfg.KubeAPI)
	if err != nil {
		return Clients{}, false, err
	}
	_, sars := reviewBudgets(cfg.KubeAPI, cfg.Authorization)
	c, err := newClients(rc, sars)
	return c, true, err
}
