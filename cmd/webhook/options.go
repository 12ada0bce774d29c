package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"github.com/rbac-proxy/rbac-proxy/internal/version"
	"github.com/rbac-proxy/rbac-proxy/webhook"
	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
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
	// checks validate the command's own flags beside the defaults, so that every configuration
	// error is reported at once, before anything starts.
	checks []func() error
}

func (o *defaultsOptions) addFlags(fs *pflag.FlagSet) {
	o.config = webhook.DefaultConfig(defaultProxyImage())
	fs.StringVar(&o.configFile, "config", "", "YAML file of the settings, by their keys in docs/webhook.md#settings; flags given on the command line win")
	addSettingFlags(fs, &o.config)
}

// load applies the config file under the flags: the file replaces the built-in defaults, and the
// flags given on the command line are applied again on top. A list flag replaces the file's list
// as a whole: --allowed-issuers=X leaves only X, whatever the file says.
func (o *defaultsOptions) load(fs *pflag.FlagSet) (*inject.Defaults, error) {
	return o.loadOver(fs, nil)
}

// loadOver is load with base (the settings an injector runs with) in place of the built-in
// defaults: the config file's keys replace base's, the flags given on the command line win.
func (o *defaultsOptions) loadOver(fs *pflag.FlagSet, base *webhook.Config) (*inject.Defaults, error) {
	if o.configFile != "" || base != nil {
		under := webhook.DefaultConfig(defaultProxyImage())
		if base != nil {
			// A copy through the config-file form: decoding the file into under must not
			// write into base's lists.
			raw, err := json.Marshal(base)
			if err == nil {
				err = json.Unmarshal(raw, &under)
			}
			if err != nil {
				return nil, err
			}
		}
		if o.configFile != "" {
			data, err := os.ReadFile(o.configFile)
			if err != nil {
				return nil, fmt.Errorf("reading --config: %w", err)
			}
			if err := yaml.UnmarshalStrict(data, &under); err != nil {
				return nil, fmt.Errorf("parsing --config %s: %w", o.configFile, err)
			}
		}
		// The values are taken before o.config is overwritten: the flags point into it. A list
		// is copied rather than printed, since Set on a list flag that was set appends, and its
		// String form ("[a,b]") does not parse back.
		scalars := map[string]string{}
		lists := map[string][]string{}
		fs.Visit(func(f *pflag.Flag) {
			if l, ok := f.Value.(pflag.SliceValue); ok {
				lists[f.Name] = append([]string{}, l.GetSlice()...)
				return
			}
			scalars[f.Name] = f.Value.String()
		})
		o.config = under
		for name, value := range scalars {
			if name == "config" {
				continue
			}
			if err := fs.Set(name, value); err != nil {
				return nil, err
			}
		}
		for name, values := range lists {
			if err := fs.Lookup(name).Value.(pflag.SliceValue).Replace(values); err != nil {
				return nil, fmt.Errorf("--%s: %w", name, err)
			}
		}
	}
	d, err := o.config.Compile()
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	for _, check := range o.checks {
		if err := check(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return d, nil
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
	metricsSecure   bool
	shutdownTimeout time.Duration
	accessCheckTTL  time.Duration
	logLevel        string
	logFormat       string
	clientCAName    string
	clientNames     []string
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
	fs.StringVar(&o.clientCAName, "webhook-client-ca-name", "", "CA file in --cert-dir: the webhook server then requires a client certificate it signed, as the API server presents when its admission configuration gives it one (docs/security.md); empty: no client certificate is asked for. Read once at start")
	fs.StringSliceVar(&o.clientNames, "webhook-client-names", nil, "with --webhook-client-ca-name, the only client certificate common names accepted (comma-separated or repeated); empty: any certificate the CA signed")
	fs.StringVar(&o.healthAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz; 0 disables them")
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8080", "address of /metrics (Prometheus); 0 disables it")
	fs.BoolVar(&o.metricsSecure, "metrics-secure", true, "serve /metrics over HTTPS with the --cert-dir certificate, only to callers the API server authenticates (TokenReview) and authorizes for get on the path /metrics (SubjectAccessReview); false: plain HTTP to anyone who reaches the port")
	fs.DurationVar(&o.shutdownTimeout, "graceful-shutdown-timeout", 30*time.Second, "how long in-flight requests may finish after SIGTERM")
	fs.DurationVar(&o.accessCheckTTL, "access-check-ttl", 5*time.Minute, "how long the answer to \"may this ServiceAccount create TokenReviews and SubjectAccessReviews\" is cached; 0 disables the check and its warning")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info or error")
	fs.StringVar(&o.logFormat, "log-format", "json", "json or console")
	o.defaults.checks = append(o.defaults.checks, o.checkClientAuth)
	return fs
}

// checkClientAuth validates the webhook's client-certificate flags: the CA is read from
// --cert-dir, beside the serving certificate, and names without a CA would verify nothing.
func (o *serveOptions) checkClientAuth() error {
	var errs field.ErrorList
	caName, names := field.NewPath("--webhook-client-ca-name"), field.NewPath("--webhook-client-names")
	if n := o.clientCAName; n != "" && (strings.ContainsAny(n, `/\`) || n == "." || n == "..") {
		errs = append(errs, field.Invalid(caName, n, "allowed: a file name in --cert-dir ("+o.certDir+"), no path"))
	}
	for i, n := range o.clientNames {
		if strings.TrimSpace(n) == "" {
			errs = append(errs, field.Invalid(names.Index(i), n, "allowed: a common name, not empty"))
		}
	}
	if len(o.clientNames) > 0 && o.clientCAName == "" {
		errs = append(errs, field.Invalid(names, strings.Join(o.clientNames, ","), "allowed: only with --webhook-client-ca-name, the CA that verifies them"))
	}
	return errs.ToAggregate()
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
