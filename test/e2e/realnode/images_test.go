package realnode

import (
	"context"
	"fmt"
	"time"

	"github.com/rbac-proxy/rbac-proxy/internal/image"
	"github.com/rbac-proxy/rbac-proxy/test/framework"
)

// images are the refs the node imported, as the Pods name them.
var images struct {
	proxy, exporter, prometheus string
}

// nodeOptions builds the project's images and returns the node's options importing them all.
func nodeOptions() (*framework.NodeOptions, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	built, err := framework.BuildImages(ctx)
	if err != nil {
		return nil, err
	}
	for _, b := range built {
		switch b.Name {
		case image.Proxy:
			images.proxy = b.Ref
		case image.SampleExporter:
			images.exporter = b.Ref
		case image.Prometheus:
			images.prometheus = b.Ref
		}
	}
	if images.prometheus == "" {
		return nil, fmt.Errorf("no Prometheus image: it is built from %s (Debian's prometheus package: make test-deps)", image.PrometheusBinary)
	}
	figures.add("images built (binaries + tarballs)", time.Since(start).Round(100*time.Millisecond).String())
	return framework.NodeImages(built)
}
