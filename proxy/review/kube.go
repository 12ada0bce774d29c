package review

import (
	"context"
	"errors"
	"fmt"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authnv1client "k8s.io/client-go/kubernetes/typed/authentication/v1"
	authzv1client "k8s.io/client-go/kubernetes/typed/authorization/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/flowcontrol"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
)

// Clients are the API calls the reviews make.
type Clients struct {
	Tokens TokenReviewer
	Access SubjectAccessReviewer
	// Issuer reads the service-account issuer's discovery documents (for
	// --service-account-token-verification=local).
	Issuer IssuerFetcher
}

// TokenReviewer creates TokenReviews; the typed client-go client is one.
type TokenReviewer interface {
	Create(ctx context.Context, tr *authnv1.TokenReview, opts metav1.CreateOptions) (*authnv1.TokenReview, error)
}

// SubjectAccessReviewer creates SubjectAccessReviews; the typed client-go
// client is one.
type SubjectAccessReviewer interface {
	Create(ctx context.Context, sar *authzv1.SubjectAccessReview, opts metav1.CreateOptions) (*authzv1.SubjectAccessReview, error)
}

// kubeRESTConfig loads the kubeconfig, or the in-cluster configuration when
// none is given. Nothing is contacted.
func kubeRESTConfig(k config.KubeAPIConfig) (*rest.Config, error) {
	var (
		cfg *rest.Config
		err error
	)
	if k.Kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", k.Kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("loading --kubeconfig %s: %w", k.Kubeconfig, err)
		}
	} else {
		cfg, err = rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("loading the in-cluster API server configuration (set --kubeconfig outside a cluster): %w", err)
		}
	}
	cfg.QPS = k.QPS
	cfg.Burst = k.Burst
	// Every call is also bounded by its context; this is a backstop.
	cfg.Timeout = k.Timeout
	cfg.UserAgent = "rbac-proxy"
	cfg.WarningHandler = rest.NoWarnings{}
	return cfg, nil
}

// inClusterAvailable reports whether in-cluster configuration can be loaded.
func inClusterAvailable() bool {
	_, err := rest.InClusterConfig()
	return !errors.Is(err, rest.ErrNotInCluster) && err == nil
}

// reviewBudget is a share of --kube-api-qps / --kube-api-burst.
type reviewBudget struct {
	QPS   float32
	Burst int
}

// reviewBudgets splits the API budget between TokenReviews and
// SubjectAccessReviews, so that neither kind waits behind the other: a flood
// of made-up tokens never delays the SubjectAccessReview of a caller whose
// identity is cached or comes from a certificate. With --authz=sar each gets
// half (a new caller needs one of each), and so with --tenancy, whose tenants
// are reviewed per namespace; with --authz=static alone no
// SubjectAccessReview is made and TokenReviews get it all.
func reviewBudgets(k config.KubeAPIConfig, a config.AuthorizationConfig) (tokens, sars reviewBudget) {
	if !a.MakesSARs() {
		return reviewBudget{k.QPS, max(k.Burst, 1)}, reviewBudget{}
	}
	half := reviewBudget{k.QPS / 2, max(k.Burst/2, 1)}
	return half, half
}

// newClients builds the TokenReview and SubjectAccessReview clients over
// one shared HTTP client. SubjectAccessReviews are limited by client-go's
// limiter at the sars budget (cfg's QPS and Burst are replaced);
// TokenReviews are not limited by client-go, because tokenAdmission, which
// orders them fairly, holds their budget.
func newClients(cfg *rest.Config, sars reviewBudget) (Clients, error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return Clients{}, fmt.Errorf("building the API server client: %w", err)
	}
	tr := rest.CopyConfig(cfg)
	tr.RateLimiter = flowcontrol.NewFakeAlwaysRateLimiter()
	sar := rest.CopyConfig(cfg)
	sar.QPS, sar.Burst = sars.QPS, max(sars.Burst, 1)
	an, err := authnv1client.NewForConfigAndClient(tr, hc)
	if err != nil {
		return Clients{}, fmt.Errorf("building the TokenReview client: %w", err)
	}
	az, err := authzv1client.NewForConfigAndClient(sar, hc)
	if err != nil {
		return Clients{}, fmt.Errorf("building the SubjectAccessReview client: %w", err)
	}
	issuer, err := newIssuerFetcher(cfg, hc)
	if err != nil {
		return Clients{}, err
	}
	return Clients{Tokens: an.TokenReviews(), Access: az.SubjectAccessReviews(), Issuer: issuer}, nil
}
