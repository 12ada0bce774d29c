// Command rbac-proxy-injector is the mutating admission webhook that injects rbac-proxy into Pods
// (`serve`), and the same injection offline over manifests (`inject -f`).
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
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	ctrlzap "sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/rbac-proxy/rbac-proxy/internal/version"
	"github.com/rbac-proxy/rbac-proxy/webhook"
)

const usage = `rbac-proxy-injector injects rbac-proxy into Pods.

Usage:
  rbac-proxy-injector serve [flags]        run the mutating admission webhook
  rbac-proxy-injector inject -f FILE|-     inject manifests offline and print them
  rbac-proxy-injector check [POD|KIND/NAME] [-n NS|-A] [-o table|json]
                                           report what the injector protects in a live
                                           cluster, what it does not, and why; exit 1 on
                                           any error finding
  rbac-proxy-injector scrape-config KIND/NAME [-n NS] [--auth token|cert] [-o servicemonitor|podmonitor|prometheus]
                                           print the ServiceMonitor, PodMonitor or scrape_config that
                                           scrapes the protected workload through its proxy
  rbac-proxy-injector redirect --port=P --to=Q [--exclude-uid=65532]
                                           install the nftables rules of port-mode redirect
                                           in this network namespace (the init container)
  rbac-proxy-injector version              print the version

Run a command with --help for its flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], stdout, stderr)
	case "inject":
		return runInject(args[1:], stdin, stdout, stderr)
	case "redirect":
		return runRedirect(args[1:], stdout, stderr)
	case "check":
		return runCheck(ctx, args[1:], stdout, stderr)
	case "scrape-config":
		return runScrapeConfig(ctx, args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintf(stdout, "rbac-proxy-injector %s\n", version.Version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "rbac-proxy-injector: unknown command %q\n\n%s", args[0], usage)
	return 2
}

// parse parses flags; done is true when the command should exit with code.
func parse(fs *pflag.FlagSet, args []string, stdout, stderr io.Writer) (code int, done bool) {
	return parseArgs(fs, args, 0, stdout, stderr)
}

// parseArgs parses flags and up to maxArgs arguments, which fs.Args() returns.
func parseArgs(fs *pflag.FlagSet, args []string, maxArgs int, stdout, stderr io.Writer) (code int, done bool) {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Fprintf(stdout, "Usage of rbac-proxy-injector %s:\n%s", fs.Name(), fs.FlagUsages())
			return 0, true
		}
		fmt.Fprintf(stderr, "rbac-proxy-injector %s: %v (see --help)\n", fs.Name(), err)
		return 2, true
	}
	if fs.NArg() > maxArgs {
		fmt.Fprintf(stderr, "rbac-proxy-injector %s: unexpected arguments %v\n", fs.Name(), fs.Args())
		return 2, true
	}
	return 0, false
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o := &serveOptions{}
	fs := newServeFlags(o)
	if code, done := parse(fs, args, stdout, stderr); done {
		return code
	}
	log, err := newLogger(stderr, o.logLevel, o.logFormat)
	if err != nil {
		fmt.Fprintf(stderr, "rbac-proxy-injector serve: %v\n", err)
		return 2
	}
	// controller-runtime and client-go log through their own package loggers; send them here.
	ctrllog.SetLogger(log)
	klog.SetLogger(log.WithName("client-go"))

	defaults, err := o.defaults.load(fs)
	if err != nil {
		log.Error(err, "invalid configuration")
		return 2
	}
	cfg, err := o.restConfig()
	if err != nil {
		log.Error(err, "no Kubernetes configuration")
		return 1
	}
	s, err := webhook.NewServer(cfg, defaults, o.serverOptions(), log)
	if err != nil {
		log.Error(err, "setting up")
		return 1
	}
	log.Info("starting", "version", version.Version, "proxyImage", defaults.Image, "sidecarMode", defaults.SidecarMode, "webhookPort", o.webhookPort, "path", o.webhookPath)
	if err := s.Run(ctx); err != nil {
		log.Error(err, "stopped")
		return 1
	}
	log.Info("stopped")
	return 0
}

func runInject(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	o := &injectOptions{}
	fs := newInjectFlags(o)
	if code, done := parse(fs, args, stdout, stderr); done {
		return code
	}
	if o.filename == "" {
		fmt.Fprintln(stderr, "rbac-proxy-injector inject: -f FILE or -f - is required")
		return 2
	}
	defaults, err := o.defaults.load(fs)
	if err != nil {
		fmt.Fprintf(stderr, "rbac-proxy-injector inject: %v\n", err)
		return 2
	}
	in := stdin
	if o.filename != "-" {
		f, err := os.Open(o.filename)
		if err != nil {
			fmt.Fprintf(stderr, "rbac-proxy-injector inject: %v\n", err)
			return 1
		}
		defer f.Close()
		in = f
	}
	inj := &webhook.Injector{Defaults: defaults}
	if err := inj.Inject(in, stdout); err != nil {
		fmt.Fprintf(stderr, "rbac-proxy-injector inject: %v\n", err)
		return 1
	}
	return 0
}

// newLogger builds controller-runtime's zap logger from --log-level and --log-format. Errors
// carry no stack trace: what went wrong is in their message, which an operator reads.
func newLogger(w io.Writer, level, format string) (logr.Logger, error) {
	var lvl zapcore.Level
	switch level {
	case "debug":
		lvl = zapcore.DebugLevel
	case "info":
		lvl = zapcore.InfoLevel
	case "error":
		lvl = zapcore.ErrorLevel
	default:
		return logr.Logger{}, fmt.Errorf("--log-level=%q: allowed: debug, info, error", level)
	}
	iso8601 := func(c *zapcore.EncoderConfig) { c.EncodeTime = zapcore.ISO8601TimeEncoder }
	var encoder ctrlzap.Opts
	switch format {
	case "json":
		encoder = ctrlzap.JSONEncoder(iso8601)
	case "console":
		encoder = ctrlzap.ConsoleEncoder(iso8601)
	default:
		return logr.Logger{}, fmt.Errorf("--log-format=%q: allowed: json, console", format)
	}
	return ctrlzap.New(ctrlzap.WriteTo(w), ctrlzap.Level(lvl), ctrlzap.StacktraceLevel(zapcore.PanicLevel), encoder), nil
}
