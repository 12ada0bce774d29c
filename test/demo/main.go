// Command demo tells rbac-proxy's story on a local control plane (`make demo`):
// the chart installed with Helm, a GPU exporter injected with the proxy and run
// as real Pods by a real kubelet (or, where this machine cannot run a node, the
// proxy run as a local process exactly as injected, and the demo says so), and
// scraped by callers with and without the right to. It exits non-zero when a check fails, and leaves nothing running.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/rbac-proxy/rbac-proxy/test/framework"
	"github.com/rbac-proxy/rbac-proxy/test/story"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	report, err := story.Run(ctx, story.Options{Out: os.Stdout, Node: true})
	// The binaries and images the story built go with it (os.Exit skips defers).
	if rerr := framework.RemoveBuilds(); rerr != nil {
		fmt.Fprintf(os.Stderr, "demo: removing what it built: %v\n", rerr)
	}
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "demo: interrupted; everything it started is stopped")
		os.Exit(130)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
	if failed := report.Failed(); len(failed) > 0 {
		fmt.Fprintf(os.Stderr, "demo: %d check(s) failed\n", len(failed))
		os.Exit(1)
	}
}
