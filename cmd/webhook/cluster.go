package main

import (
	"errors"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/rbac-proxy/rbac-proxy/webhook/check"
)

// clusterOptions are the flags of the commands that read a live cluster as kubectl does (check,
// scrape-config).
type clusterOptions struct {
	kubeconfig, context, namespace string
}

func (o *clusterOptions) addFlags(fs *pflag.FlagSet, namespaceHelp string) {
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file, as kubectl reads it; empty: $KUBECONFIG, then ~/.kube/config")
	fs.StringVar(&o.context, "context", "", "kubeconfig context; empty: the current context")
	fs.StringVarP(&o.namespace, "namespace", "n", "", namespaceHelp)
}

// clientConfig is the kubeconfig as kubectl loads it: --kubeconfig, else $KUBECONFIG, else
// ~/.kube/config (then in-cluster), with --context and --namespace on top when set.
func (o *clusterOptions) clientConfig() clientcmd.ClientConfig {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: o.context}
	overrides.Context.Namespace = o.namespace
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
}

// requestTimeout bounds each request: a command against an API server that does not answer
// fails instead of hanging a CI job.
const requestTimeout = 30 * time.Second

// newClusterClient is a client without cache, with the caller's credentials, that knows every
// type check and scrape-config read.
func newClusterClient(cfg *rest.Config) (client.Client, error) {
	cfg = rest.CopyConfig(cfg)
	if cfg.Timeout == 0 {
		cfg.Timeout = requestTimeout
	}
	scheme, err := check.NewScheme()
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, errors.Join(errors.New("connecting to the API server"), err)
	}
	return c, nil
}
