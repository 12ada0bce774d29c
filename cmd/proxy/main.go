// Command rbac-proxy is a drop-in replacement for kube-rbac-proxy: it
// authenticates and authorizes each request before proxying it upstream.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	"go.uber.org/zap/zapcore"
	"k8s.io/klog/v2"
	ctrlzap "sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/rbac-proxy/rbac-proxy/internal/version"
	"github.com/rbac-proxy/rbac-proxy/proxy"
	"github.com/rbac-proxy/rbac-proxy/proxy/config"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	flags := config.NewFlags("rbac-proxy")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			printUsage(stdout, flags)
			return 0
		}
		fmt.Fprintf(stderr, "rbac-proxy: %v (see --help)\n", err)
		return 2
	}
	if flags.Help {
		printUsage(stdout, flags)
		return 0
	}
	if flags.Version {
		fmt.Fprintf(stdout, "rbac-proxy %s\n", version.Version)
		return 0
	}

	log := newLogger(stderr, flags.Verbosity)
	// client-go logs through klog; send it to the same place. klog's own
	// verbosity stays 0, so request bodies (tokens) are never dumped.
	klog.SetLogger(log.WithName("client-go"))

	cfg, err := flags.Config()
	if err != nil {
		fmt.Fprintf(stderr, "rbac-proxy: %v\n", err)
		return 1
	}
	for _, w := range flags.Warnings() {
		log.Info("WARNING: " + w)
	}

	srv, err := proxy.New(cfg, proxy.Options{Logger: log})
	if err != nil {
		fmt.Fprintf(stderr, "rbac-proxy: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	log.Info("starting rbac-proxy", "version", version.Version, "upstream", cfg.Upstream.URL.String(), "authz", string(cfg.Authorization.Mode))
	if err := srv.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "rbac-proxy: %v\n", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

// newLogger is controller-runtime's JSON zap logger on w: -v N enables logr
// V(N) messages (zap level -N), errors carry no stack trace (their message
// says what went wrong), and below -v 2 identical messages past 100 a second
// are sampled (controller-runtime's production setting), so a flood of one
// error cannot flood the log.
func newLogger(w io.Writer, verbosity int) logr.Logger {
	// zap levels are an int8: a larger -v would wrap around and disable logging.
	verbosity = min(max(verbosity, -int(zapcore.FatalLevel)), 127)
	opts := ctrlzap.Options{
		Development:     false, // JSON lines
		DestWriter:      w,
		Level:           zapcore.Level(-verbosity),
		StacktraceLevel: zapcore.PanicLevel,
		TimeEncoder:     zapcore.ISO8601TimeEncoder,
	}
	return ctrlzap.New(ctrlzap.UseFlagOptions(&opts))
}

func printUsage(w io.Writer, flags *config.Flags) {
	fmt.Fprintf(w, `rbac-proxy is an HTTPS proxy for a single upstream that lets through only
callers authenticated by a client certificate or a bearer token (TokenReview)
and authorized by static rules or a SubjectAccessReview.
It accepts kube-rbac-proxy's flags and configuration file.

Usage:
  rbac-proxy [flags]

Flags:
%s`, flags.FlagSet().FlagUsages())
}
