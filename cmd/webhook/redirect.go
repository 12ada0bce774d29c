package main

import (
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/rbac-proxy/rbac-proxy/webhook/redirect"
)

// runRedirect is the init container of rbac-proxy.io/port-mode=redirect: it installs the nftables
// rules that send the protected port's inbound connections to the proxy, in its own network
// namespace (the Pod's), and exits.
func runRedirect(args []string, stdout, stderr io.Writer) int {
	o := &redirectOptions{}
	fs := newRedirectFlags(o)
	if code, done := parse(fs, args, stdout, stderr); done {
		return code
	}
	rules, err := redirect.Build(o.Config)
	if err != nil {
		fmt.Fprintf(stderr, "rbac-proxy-injector redirect: %v\n", err)
		return 2
	}
	if o.dryRun {
		fmt.Fprint(stdout, rules)
		return 0
	}
	if err := redirect.Apply(rules); err != nil {
		fmt.Fprintf(stderr, "rbac-proxy-injector redirect: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "rbac-proxy-injector redirect: installed\n%s", rules)
	return 0
}

type redirectOptions struct {
	redirect.Config
	dryRun bool
}

func newRedirectFlags(o *redirectOptions) *pflag.FlagSet {
	fs := pflag.NewFlagSet("redirect", pflag.ContinueOnError)
	fs.Uint16Var(&o.Port, "port", 0, "the protected (app) port whose inbound TCP connections go to the proxy")
	fs.Uint16Var(&o.To, "to", 0, "the proxy's port")
	fs.Uint32Var(&o.ExcludeUID, "exclude-uid", 65532, "the proxy's user ID: its own connections to the app are not redirected")
	fs.BoolVar(&o.dryRun, "dry-run", false, "print the rules in nft syntax and install nothing")
	return fs
}
