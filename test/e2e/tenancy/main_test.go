// Package tenancy_test proves the proxy's tenancy mode against a real kube-apiserver with real
// Prometheus servers as the scrapers: through one proxy in front of one dcgm-exporter-shaped
// exporter, a team's Prometheus stores only the series of the namespaces its ServiceAccount may
// read, the cluster's Prometheus everything, a ServiceAccount that may read no namespace gets
// 403, and once every answer is cached the scrapes cost the API server no SubjectAccessReview.
package tenancy_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/rbac-proxy/rbac-proxy/test/framework"
)

var (
	cp *framework.ControlPlane
	// proxyBin is the rbac-proxy binary built for this run.
	proxyBin string
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	if _, err := os.Stat(prometheusBin); err != nil {
		// A suite that did not run must never read as passed.
		fmt.Fprintf(os.Stderr, "FAIL: no Prometheus (make test-deps installs Debian's): %v\n", err)
		return 1
	}
	var err error
	if proxyBin, err = framework.Build(context.Background(), "./cmd/proxy"); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	return framework.Main(m, framework.Options{}, &cp)
}
