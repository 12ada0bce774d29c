package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/rbac-proxy/rbac-proxy/webhook"
	"github.com/rbac-proxy/rbac-proxy/webhook/check"
)

// checkOptions are the flags of `check`.
type checkOptions struct {
	defaults      defaultsOptions
	cluster       clusterOptions
	injector      injectorOption
	allNamespaces bool
	output        string
	scrapers      []string
}

func newCheckFlags(o *checkOptions) *pflag.FlagSet {
	fs := pflag.NewFlagSet("check", pflag.ContinueOnError)
	o.defaults.addFlags(fs)
	o.cluster.addFlags(fs, "namespace to check; empty: the context's namespace, else default")
	o.injector.addFlag(fs)
	fs.BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "check every namespace")
	fs.StringVarP(&o.output, "output", "o", "table", "table or json (the check.rbac-proxy.io/v1alpha1 Report)")
	fs.StringArrayVar(&o.scrapers, "scraper", nil, "user Prometheus scrapes as, e.g. system:serviceaccount:monitoring:prometheus (repeatable): whether each may scrape every protected workload; none: that check is not run")
	o.defaults.checks = append(o.defaults.checks, o.checkFlags, o.injector.check)
	return fs
}

// checkFlags validates check's own flags, each error naming the flag and its value.
func (o *checkOptions) checkFlags() error {
	var errs field.ErrorList
	if o.output != "table" && o.output != "json" {
		errs = append(errs, field.NotSupported(field.NewPath("--output"), o.output, []string{"table", "json"}))
	}
	if o.allNamespaces && o.cluster.namespace != "" {
		errs = append(errs, field.Invalid(field.NewPath("--namespace"), o.cluster.namespace, "allowed: --namespace or --all-namespaces, not both"))
	}
	for i, s := range o.scrapers {
		if _, err := check.ParseScraper(s); err != nil {
			errs = append(errs, field.Invalid(field.NewPath("--scraper").Index(i), s, err.Error()))
		}
	}
	return errs.ToAggregate()
}

func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o := &checkOptions{}
	fs := newCheckFlags(o)
	if code, done := parseArgs(fs, args, 1, stdout, stderr); done {
		return code
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "rbac-proxy-injector check: "+format+"\n", a...)
		return code
	}
	// The flags are checked before the cluster is asked; the injector's own settings go under
	// them once it is read.
	if _, err := o.defaults.load(fs); err != nil {
		return fail(2, "%v", err)
	}
	cc := o.cluster.clientConfig()
	namespace, _, err := cc.Namespace()
	if err != nil {
		return fail(2, "kubeconfig: %v", err)
	}
	scope := check.Scope{AllNamespaces: o.allNamespaces}
	if !o.allNamespaces {
		scope.Namespaces = []string{namespace}
	}
	var object *check.ObjectRef
	if fs.NArg() == 1 {
		scope.Object = fs.Arg(0)
		if o.allNamespaces {
			return fail(2, "argument %q: a workload is named in one namespace; allowed: --namespace, not --all-namespaces", fs.Arg(0))
		}
		kind, name, err := webhook.ParseWorkloadArg(fs.Arg(0))
		if err != nil {
			return fail(2, "argument %v", err)
		}
		object = &check.ObjectRef{Kind: kind.Kind, Namespace: namespace, Name: name}
	}
	cfg, err := cc.ClientConfig()
	if err != nil {
		return fail(2, "kubeconfig: %v", err)
	}
	c, err := newClusterClient(cfg)
	if err != nil {
		return fail(2, "%v", err)
	}
	defaults, settings, err := o.injector.load(ctx, c, &o.defaults, fs)
	if err != nil {
		return fail(2, "the injector's settings, from the cluster at %s: %v", cfg.Host, err)
	}
	snap, err := check.Gather(ctx, c, defaults, scope)
	if err != nil {
		return fail(2, "reading the cluster at %s: %v", cfg.Host, err)
	}
	scrapers := make([]check.Scraper, len(o.scrapers))
	for i, s := range o.scrapers {
		scrapers[i], _ = check.ParseScraper(s)
	}
	report := (&check.Checker{Defaults: defaults, Settings: settings, Scrapers: scrapers, Reviews: c}).Check(ctx, snap)
	if object != nil {
		ref, ok := snap.WorkloadOf(*object)
		if !ok || !report.Filter(ref) {
			return fail(2, "%s %s not found in namespace %s", strings.ToLower(object.Kind), object.Name, object.Namespace)
		}
	}
	if o.output == "json" {
		err = check.WriteJSON(stdout, report)
	} else {
		err = check.WriteTable(stdout, report)
	}
	if err != nil {
		return fail(2, "%v", err)
	}
	if report.Summary.Errors > 0 {
		return 1
	}
	return 0
}
