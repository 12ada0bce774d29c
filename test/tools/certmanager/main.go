// Command cert-manager-controller runs the real cert-manager controllers
// (github.com/cert-manager/cert-manager) that the rbac-proxy tests need, in a
// single process against any API server reachable through a kubeconfig:
//
//   - the Certificate controllers (trigger, key-manager, request-manager,
//     issuing, readiness, revision-manager, metrics),
//   - the CertificateRequest approver and the SelfSigned and CA signers,
//   - the Issuer and ClusterIssuer controllers (SelfSigned and CA only),
//   - the cainjector for MutatingWebhookConfigurations,
//     ValidatingWebhookConfigurations, APIServices and CRDs.
//
// Usage:
//
//	cert-manager-controller --kubeconfig=PATH [--cluster-resource-namespace=cert-manager] [--leader-elect] [-v=N]
//	cert-manager-controller crds [--source=DIR] OUTDIR
//
// The crds subcommand writes the cert-manager CustomResourceDefinitions of the
// cert-manager version this binary was built with into OUTDIR.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/klog/v2"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintf(os.Stderr, "cert-manager-controller: %v\n", err)
		klog.Flush()
		os.Exit(1)
	}
	klog.Flush()
}

func run(args []string, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	if len(args) > 0 && args[0] == "crds" {
		return runCRDs(args[1:], stderr)
	}

	opts, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	return runAll(ctx, opts)
}

// options is the whole configuration of the controller process.
type options struct {
	kubeconfig               string
	clusterResourceNamespace string
	leaderElect              bool
	leaderElectionNamespace  string
	workers                  int
	crdWaitTimeout           time.Duration
	enableOwnerRef           bool
}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("cert-manager-controller", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "path to the kubeconfig of the target API server (required)")
	fs.StringVar(&o.clusterResourceNamespace, "cluster-resource-namespace", "cert-manager",
		"namespace holding the Secrets referenced by ClusterIssuers")
	fs.BoolVar(&o.leaderElect, "leader-elect", false, "elect a leader (Lease) before running the controllers")
	fs.StringVar(&o.leaderElectionNamespace, "leader-election-namespace", "",
		"namespace of the leader election Lease (default: --cluster-resource-namespace)")
	fs.IntVar(&o.workers, "workers", 5, "workers per cert-manager controller")
	fs.BoolVar(&o.enableOwnerRef, "enable-certificate-owner-ref", false,
		"make each Certificate own its Secret, so the Secret is garbage-collected with it (upstream's flag of the same name)")
	fs.DurationVar(&o.crdWaitTimeout, "crd-wait-timeout", 0,
		"give up if the cert-manager CRDs are not served after this long (0: wait until stopped)")
	klogFlags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(klogFlags)
	for _, name := range []string{"v", "vmodule"} {
		fs.Var(klogFlags.Lookup(name).Value, name, klogFlags.Lookup(name).Usage)
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if o.kubeconfig == "" {
		return o, errors.New("--kubeconfig is required")
	}
	if o.clusterResourceNamespace == "" {
		return o, errors.New("--cluster-resource-namespace must not be empty")
	}
	if o.workers < 1 {
		return o, errors.New("--workers must be at least 1")
	}
	if o.leaderElectionNamespace == "" {
		o.leaderElectionNamespace = o.clusterResourceNamespace
	}
	return o, nil
}
