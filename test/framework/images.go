package framework

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/rbac-proxy/rbac-proxy/internal/image"
)

// ImageVersion is the tag of the images BuildImages builds.
const ImageVersion = "test"

// BuildImages builds the project's images (internal/image: the proxy, the
// sample exporter, the sandbox and, where Debian's is installed, Prometheus)
// from this checkout into a temporary folder, as `make image` does, without
// shelling out to make: each program with Build, then image.BuildAll. They
// stay until RemoveBuilds.
func BuildImages(ctx context.Context) ([]image.Built, error) {
	dir, err := buildFolder("images-")
	if err != nil {
		return nil, fmt.Errorf("creating a folder for the images: %w", err)
	}
	binDir := filepath.Join(dir, "bin")
	for _, p := range image.Programs {
		if _, err := buildTo(ctx, p.Package, filepath.Join(binDir, p.Binary)); err != nil {
			return nil, err
		}
	}
	return image.BuildAll(ctx, binDir, filepath.Join(dir, "images"), ImageVersion)
}

// NodeImages are NodeOptions that import every built image and run Pods'
// sandboxes from its pause image.
func NodeImages(built []image.Built) (*NodeOptions, error) {
	opts := &NodeOptions{}
	for _, b := range built {
		opts.Images = append(opts.Images, b.Path)
		if b.Name == image.Pause {
			opts.SandboxImage = b.Ref
		}
	}
	if opts.SandboxImage == "" {
		return nil, fmt.Errorf("no %s among the built images: the node has no sandbox image", image.Pause)
	}
	return opts, nil
}
