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
	var port, to uint16
	var uid uint32
	var dryRun bool
	fs := pflag.NewFlagSet("redirect", pflag.ContinueOnError)
	fs.Uint16Var(&port, "port", 0, "the protected (app) port whose inbound TCP connections go to the proxy")
	fs.Uint16Var(&to, "to", 0, "the proxy's port")
	fs.Uint32Var(&uid, "exclude-uid", 65532, "the proxy's user ID: its own connections to the app are not redirected")
	fs.BoolVar(&dryRun, "dry-run", false, "print the rules in nft syntax and install nothing")
	if code, done := parse(fs, args, stdout, stderr); done {
		return code
	}
	rules, err := redirect.Build(redirect.Config{Port: port, To: to, ExcludeUID: uid})
	if err != nil {
		fmt.Fprintf(stderr, "rbac-proxy-injector redirect: %v\n", err)
		return 2
	}
	if dryRun {
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
