package proxy

import (
	"errors"
	"fmt"
	"net/http"

	authnv1client "k8s.io/client-go/kubernetes/typed/authentication/v1"
	authzv1client "k8s.io/client-go/kubernetes/typed/authorization/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Reviewers are the two API calls the proxy makes.
type Reviewers struct {
	Tokens TokenReviewer
	Access SubjectAccessReviewer
}

// kubeRESTConfig loads the kubeconfig, or the in-cluster configuration when
// none is given. Nothing is contacted.
func kubeRESTConfig(k KubeAPIConfig) (*rest.Config, error) {
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

// newReviewers builds the TokenReview and SubjectAccessReview clients over
// one shared HTTP client.
func newReviewers(cfg *rest.Config) (Reviewers, error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return Reviewers{}, fmt.Errorf("building the API server client: %w", err)
	}
	return newReviewersForClient(cfg, hc)
}

func newReviewersForClient(cfg *rest.Config, hc *http.Client) (Reviewers, error) {
	an, err := authnv1client.NewForConfigAndClient(cfg, hc)
	if err != nil {
		return Reviewers{}, fmt.Errorf("building the TokenReview client: %w", err)
	}
	az, err := authzv1client.NewForConfigAndClient(cfg, hc)
	if err != nil {
		return Reviewers{}, fmt.Errorf("building the SubjectAccessReview client: %w", err)
	}
	return Reviewers{Tokens: an.TokenReviews(), Access: az.SubjectAccessReviews()}, nil
}
