package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/rbac-proxy/rbac-proxy/webhook"
	"github.com/rbac-proxy/rbac-proxy/webhook/scrapeconfig"
)

// scrapeConfigOptions are the flags of `scrape-config`.
type scrapeConfigOptions struct {
	defaults            defaultsOptions
	cluster             clusterOptions
	injector            injectorOption
	auth                string
	output              string
	prometheusNamespace string
	clientCertSecret    string
	targets             string
	// changed says which flags the command line set, for the checks of flags that go together.
	changed func(name string) bool
}

func newScrapeConfigFlags(o *scrapeConfigOptions) *pflag.FlagSet {
	fs := pflag.NewFlagSet("scrape-config", pflag.ContinueOnError)
	o.defaults.addFlags(fs)
	o.cluster.addFlags(fs, "the workload's namespace; empty: the context's namespace, else default")
	o.injector.addFlag(fs)
	fs.StringVar(&o.auth, "auth", string(scrapeconfig.AuthToken), "how Prometheus authenticates: token (a projected ServiceAccount token of the audience the proxy requires) or cert (a client certificate from the scrapers' CA)")
	fs.StringVarP(&o.output, "output", "o", "", "servicemonitor, podmonitor or prometheus (a plain scrape_configs item); empty: servicemonitor when a labelled Service leads to the proxy, else podmonitor")
	fs.StringVar(&o.prometheusNamespace, "prometheus-namespace", "monitoring", "namespace of the prometheus-operator Prometheus that takes the scrape class of the credentials, and, with --auth cert, of the client certificate's Secret")
	fs.StringVar(&o.clientCertSecret, "client-cert-secret", "", "with --auth cert: the Secret (tls.crt, tls.key) of Prometheus' client certificate from the scrapers' CA, in Prometheus' namespace (the scrapers' Issuer's)")
	fs.StringVar(&o.targets, "targets", string(scrapeconfig.TargetsKubernetes), "with -o prometheus: kubernetes (kubernetes_sd_configs, the Pods kept by their labels and port) or static (the Pods' current IPs, for a Prometheus without Kubernetes discovery)")
	o.changed = fs.Changed
	o.defaults.checks = append(o.defaults.checks, o.check, o.injector.check)
	return fs
}

// check validates the command's own flags, each error naming the flag, its value and what is
// allowed.
func (o *scrapeConfigOptions) check() error {
	var errs field.ErrorList
	auth := field.NewPath("--auth")
	if !slices.Contains(scrapeconfig.Auths(), scrapeconfig.Auth(o.auth)) {
		errs = append(errs, field.NotSupported(auth, o.auth, scrapeconfig.Auths()))
	}
	if o.output != "" && !slices.Contains(scrapeconfig.Outputs(), scrapeconfig.Output(o.output)) {
		errs = append(errs, field.NotSupported(field.NewPath("-o"), o.output, scrapeconfig.Outputs()))
	}
	if !slices.Contains(scrapeconfig.TargetsModes(), scrapeconfig.Targets(o.targets)) {
		errs = append(errs, field.NotSupported(field.NewPath("--targets"), o.targets, scrapeconfig.TargetsModes()))
	} else if o.changed("targets") && o.output != string(scrapeconfig.OutputPrometheus) {
		errs = append(errs, field.Invalid(field.NewPath("--targets"), o.targets, "allowed: only with -o prometheus; a monitor's targets are found by prometheus-operator"))
	}
	secret := field.NewPath("--client-cert-secret")
	switch {
	case o.auth == string(scrapeconfig.AuthCert) && o.clientCertSecret == "":
		errs = append(errs, field.Required(secret, "with --auth cert: the Secret of Prometheus' client certificate from the scrapers' CA"))
	case o.auth != string(scrapeconfig.AuthCert) && o.clientCertSecret != "":
		errs = append(errs, field.Invalid(secret, o.clientCertSecret, "allowed: only with --auth cert"))
	case o.clientCertSecret != "":
		if msgs := validation.IsDNS1123Subdomain(o.clientCertSecret); len(msgs) > 0 {
			errs = append(errs, field.Invalid(secret, o.clientCertSecret, "allowed: a Secret name: "+strings.Join(msgs, "; ")))
		}
	}
	if msgs := validation.IsDNS1123Label(o.prometheusNamespace); len(msgs) > 0 {
		errs = append(errs, field.Invalid(field.NewPath("--prometheus-namespace"), o.prometheusNamespace, "allowed: a namespace name: "+strings.Join(msgs, "; ")))
	}
	return errs.ToAggregate()
}

// runScrapeConfig prints how Prometheus scrapes the workload KIND/NAME through its proxy.
func runScrapeConfig(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o := &scrapeConfigOptions{}
	fs := newScrapeConfigFlags(o)
	if code, done := parseArgs(fs, args, 1, stdout, stderr); done {
		return code
	}
	fail := func(code int, err error) int {
		fmt.Fprintf(stderr, "rbac-proxy-injector scrape-config: %v\n", err)
		return code
	}
	if fs.NArg() != 1 {
		return fail(2, errors.New("KIND/NAME is required: the workload to scrape; kinds: "+webhook.WorkloadArgKinds))
	}
	kind, name, err := webhook.ParseWorkloadArg(fs.Arg(0))
	if err != nil {
		return fail(2, err)
	}
	// The flags are checked before the cluster is asked; the injector's own settings go under
	// them once it is read.
	if _, err := o.defaults.load(fs); err != nil {
		return fail(2, err)
	}
	cc := o.cluster.clientConfig()
	namespace, _, err := cc.Namespace()
	if err != nil {
		return fail(2, fmt.Errorf("kubeconfig: %w", err))
	}
	cfg, err := cc.ClientConfig()
	if err != nil {
		return fail(2, fmt.Errorf("kubeconfig: %w", err))
	}
	api, err := newClusterClient(cfg)
	if err != nil {
		return fail(2, err)
	}
	defaults, settings, err := o.injector.load(ctx, api, &o.defaults, fs)
	if err != nil {
		return fail(2, fmt.Errorf("the injector's settings, from the cluster at %s: %w", cfg.Host, err))
	}
	fmt.Fprintf(stderr, "rbac-proxy-injector scrape-config: settings: %s\n", settings)
	in, warnings, err := scrapeconfig.Gather(ctx, api, defaults, namespace, kind, name)
	if err != nil {
		return fail(1, err)
	}
	for _, w := range warnings {
		fmt.Fprintf(stderr, "rbac-proxy-injector scrape-config: warning: %s\n", w)
	}
	in.Auth, in.ClientCertSecret = scrapeconfig.Auth(o.auth), o.clientCertSecret
	s, err := scrapeconfig.Describe(in)
	if err != nil {
		return fail(1, err)
	}
	out := scrapeconfig.Options{Output: scrapeconfig.Output(o.output), Targets: scrapeconfig.Targets(o.targets), PrometheusNamespace: o.prometheusNamespace}
	if out.Output == "" {
		out.Output = s.DefaultOutput()
	}
	if out.Output == scrapeconfig.OutputPrometheus && out.Targets == scrapeconfig.TargetsStatic && len(s.Targets) == 0 {
		return fail(1, fmt.Errorf("%s in namespace %s has no running Pod with the proxy to list as a target", fs.Arg(0), namespace))
	}
	if err := s.Write(stdout, out); err != nil {
		return fail(1, err)
	}
	return 0
}
