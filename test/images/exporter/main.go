// Command exporter is a static stand-in for NVIDIA's dcgm-exporter: it serves
// the GPU sample on /metrics and 200 on /health where dcgm-exporter listens.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/rbac-proxy/rbac-proxy/internal/sample"
)

// listenEnv is dcgm-exporter's environment variable for its listen address;
// the injector rewrites it in takeover mode (webhook/inject/presets.go).
const listenEnv = "DCGM_EXPORTER_LISTEN"

// config is what the command line and the environment decide.
type config struct {
	address  string
	hostname string
}

// parseConfig reads the flags and environment as dcgm-exporter does: the
// -a/--address flag wins over DCGM_EXPORTER_LISTEN, which wins over ":9400".
// The Hostname label is NODE_NAME (set from the downward API, as
// dcgm-exporter's DaemonSet does) or else the host name.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	fs := pflag.NewFlagSet("exporter", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	address := fs.StringP("address", "a", ":9400", "address to serve /metrics and /health on (env "+listenEnv+")")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	c := config{address: *address, hostname: getenv("NODE_NAME")}
	if v := getenv(listenEnv); v != "" && !fs.Changed("address") {
		c.address = v
	}
	if c.hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return config{}, fmt.Errorf("reading the host name: %w", err)
		}
		c.hostname = h
	}
	return c, nil
}

func main() {
	c, err := parseConfig(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, pflag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "exporter:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := serve(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "exporter:", err)
		os.Exit(1)
	}
}

// serve serves the sample until ctx ends, then lets in-flight scrapes finish.
func serve(ctx context.Context, c config) error {
	srv := &http.Server{Addr: c.address, Handler: sample.Handler(c.hostname), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	fmt.Fprintf(os.Stderr, "exporter: serving %d GPUs on %s\n", len(sample.GPUs), c.address)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}
