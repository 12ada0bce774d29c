package story

import (
	"context"
	"fmt"

	"github.com/rbac-proxy/rbac-proxy/internal/image"
	"github.com/rbac-proxy/rbac-proxy/test/framework"
)

// installChart is step 2: build rbac-proxy and rbac-proxy-injector, then helm
// install the chart with the webhook running as a local process.
func installChart(ctx context.Context, s *teller, env *Env) error {
	s.progress("building binaries (rbac-proxy, rbac-proxy-injector)")
	var err error
	if env.proxyBin, err = framework.Build(ctx, "./cmd/proxy"); err != nil {
		return err
	}
	if env.injectorBin, err = framework.Build(ctx, "./cmd/webhook"); err != nil {
		return err
	}
	s.progress("installing the chart %s with Helm (release %s in namespace %s)", framework.ChartDir, framework.ReleaseName, framework.ReleaseNamespace)
	var sets []string
	if env.onNode() {
		// The node imported the image (internal/image) and can pull nothing.
		sets = []string{"image.repository=" + image.Proxy, "image.tag=" + framework.ImageVersion,
			"image.pullPolicy=Never", "proxy.image.pullPolicy=Never"}
	}
	inj, err := env.CP.InstallChart(ctx, env.injectorBin, sets...)
	if err != nil {
		return fmt.Errorf("installing the chart: %w", err)
	}
	env.Injector = inj
	env.onStop(inj.Stop)
	s.printf("        webhook running: rbac-proxy-injector %v\n", inj.Args)
	return nil
}
