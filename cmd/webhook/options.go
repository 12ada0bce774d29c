package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"

	"github.com/rbac-proxy/rbac-proxy/internal/version"
	"github.com/rbac-proxy/rbac-proxy/webhook"
)

// defaultProxyImage is the proxy image of this release, without a registry: the chart or the
// flag adds one.
func defaultProxyImage() string {
	return "rbac-proxy:" + version.Version
}

// defaultsOptions are the webhook's defaults for every injected Pod, shared by serve and inject.
type defaultsOptions struct {
	config     webhook.Config
	configFile string
}

func (o *defaultsOptions) addFlags(fs *pflag.FlagSet) {
	o.config = webhook.DefaultConfig(defaultProxyImage())
	c := &o.config
	fs.StringVar(&o.configFile, "config", "", "YAML file with the injection defaults (keys as in docs/webhook.md); flags given on the command line win")
	fs.StringVar(&c.ProxyImage, "proxy-image", c.ProxyImage, "image of the injected proxy")
	fs.StringVar((*string)(&c.ProxyImagePullPolicy), "proxy-image-pull-policy", string(c.ProxyImagePullPolicy), "imagePullPolicy of the proxy: Always, IfNotPresent, Never")
	fs.StringVar(&c.DefaultIssuer, "default-issuer", c.DefaultIssuer, "cert-manager issuer for Pods without rbac-proxy.io/issuer: Issuer/NAME, ClusterIssuer/NAME or KIND.GROUP/NAME; empty: Pods must name one or a tls-secret")
	fs.Int32Var(&c.ProxyPort, "proxy-port", c.ProxyPort, "port the proxy listens on, unless rbac-proxy.io/proxy-port says otherwise")
	fs.Int32Var(&c.ProxyEndpointsPort, "proxy-endpoints-port", c.ProxyEndpointsPort, "port of the proxy's /healthz, /readyz and /metrics, used by its probes")
	fs.StringVar((*string)(&c.SidecarMode), "sidecar-mode", string(c.SidecarMode), "native (init container with restartPolicy Always) or container (a regular container)")
	fs.StringVar(&c.Resources.CPURequest, "proxy-cpu-request", c.Resources.CPURequest, "CPU request of the proxy; empty for none")
	fs.StringVar(&c.Resources.MemoryRequest, "proxy-memory-request", c.Resources.MemoryRequest, "memory request of the proxy; empty for none")
	fs.StringVar(&c.Resources.CPULimit, "proxy-cpu-limit", c.Resources.CPULimit, "CPU limit of the proxy; empty for none")
	fs.StringVar(&c.Resources.MemoryLimit, "proxy-memory-limit", c.Resources.MemoryLimit, "memory limit of the proxy; empty for none")
	fs.IntVar(&c.ProxyVerbosity, "proxy-verbosity", c.ProxyVerbosity, "the proxy's -v (0-10); 0 renders no flag")
	fs.StringVar(&c.ClusterDomain, "cluster-domain", c.ClusterDomain, "cluster DNS domain for the Certificates' fully qualified names")
}

// load applies the config file under the flags: the file replaces the built-in defaults, and the
// flags given on the command line are applied again on top.
func (o *defaultsOptions) load(fs *pflag.FlagSet) (*webhook.Defaults, error) {
	if o.configFile != "" {
		data, err := os.ReadFile(o.configFile)
		if err != nil {
			return nil, fmt.Errorf("reading --config: %w", err)
		}
		fromFile := webhook.DefaultConfig(defaultProxyImage())
		if err := yaml.UnmarshalStrict(data, &fromFile); err != nil {
			return nil, fmt.Errorf("parsing --config %s: %w", o.configFile, err)
		}
		set := map[string]string{}
		fs.Visit(func(f *pflag.Flag) { set[f.Name] = f.Value.String() })
		o.config = fromFile
		for name, value := range set {
			if name == "config" {
				continue
			}
			if err := fs.Set(name, value); err != nil {
				return nil, err
			}
		}
	}
	return o.config.Compile()
}

// serveOptions are the flags of `serve`.
type serveOptions struct {
	defaults        defaultsOptions
	kubeconfig      string
	webhookHost     string
	webhookPort     int
	certDir         string
	certName        string
	keyName         string
	webhookPath     string
	healthAddr      string
	metricsAddr     string
	shutdownTimeout time.Duration
	accessCheckTTL  time.Duration
	logLevel        string
	logFormat       string
}

// newServeFlags binds every flag of `serve` to o, with its default.
func newServeFlags(o *serveOptions) *pflag.FlagSet {
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	o.defaults.addFlags(fs)
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig to reach the API server; empty: in-cluster config, then $KUBECONFIG")
	fs.StringVar(&o.webhookHost, "webhook-host", "", "address the webhook server listens on; empty: all")
	fs.IntVar(&o.webhookPort, "webhook-port", 9443, "port of the webhook server (HTTPS)")
	fs.StringVar(&o.certDir, "cert-dir", "/etc/rbac-proxy-injector/tls", "directory of the webhook's serving certificate; reloaded when it changes")
	fs.StringVar(&o.certName, "tls-cert-name", "tls.crt", "certificate file in --cert-dir")
	fs.StringVar(&o.keyName, "tls-key-name", "tls.key", "private key file in --cert-dir")
	fs.StringVar(&o.webhookPath, "webhook-path", "/mutate-pods", "URL path the mutating webhook is served on")
	fs.StringVar(&o.healthAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz; 0 disables them")
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8080", "address of /metrics (Prometheus); 0 disables it")
	fs.DurationVar(&o.shutdownTimeout, "graceful-shutdown-timeout", 30*time.Second, "how long in-flight requests may finish after SIGTERM")
	fs.DurationVar(&o.accessCheckTTL, "access-check-ttl", 5*time.Minute, "how long the answer to \"may this ServiceAccount create TokenReviews and SubjectAccessReviews\" is cached; 0 disables the check and its warning")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info or error")
	fs.StringVar(&o.logFormat, "log-format", "json", "json or console")
	return fs
}

// injectOptions are the flags of `inject`.
type injectOptions struct {
	defaults defaultsOptions
	filename string
}

func newInjectFlags(o *injectOptions) *pflag.FlagSet {
	fs := pflag.NewFlagSet("inject", pflag.ContinueOnError)
	o.defaults.addFlags(fs)
	fs.StringVarP(&o.filename, "filename", "f", "", "manifests to inject (multi-document YAML); - for standard input")
	return fs
}
