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
	"github.com/go-logr/zapr"
	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"k8s.io/klog/v2"

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

// newLogger logs JSON to w; -v N enables logr V(N) messages.
func newLogger(w io.Writer, verbosity int) logr.Logger {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(w), zap.NewAtomicLevelAt(zapcore.Level(-verbosity)))
	return zapr.NewLogger(zap.New(core))
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
