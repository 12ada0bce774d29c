// Package node is the real-node suite: a control plane with a real kubelet
// and containerd on this machine (framework.Options.Node), a Pod with a
// native sidecar, probes, a projected token and a Secret volume run to Ready,
// reached from the host and reaching the API server from inside, and a
// teardown that leaves nothing behind.
package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rbac-proxy/rbac-proxy/internal/image"
	"github.com/rbac-proxy/rbac-proxy/test/framework"
)

var (
	cp *framework.ControlPlane
	// nodeOpts are the node's: every image imported.
	nodeOpts *framework.NodeOptions
	// The images the suite's Pods run.
	exporterImage, probeImage string
)

// probeName is the suite's own image: test/e2e/node/probe.
const probeName = "rbac-proxy-node-probe"

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var err error
	if nodeOpts, err = nodeOptions(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: building the node's images: %v\n", err)
		return 1
	}
	return framework.Main(m, framework.Options{Node: nodeOpts}, &cp)
}

// nodeOptions builds the project's images and the probe's, all imported.
func nodeOptions(ctx context.Context) (*framework.NodeOptions, error) {
	built, err := framework.BuildImages(ctx)
	if err != nil {
		return nil, err
	}
	opts, err := framework.NodeImages(built)
	if err != nil {
		return nil, err
	}
	for _, b := range built {
		if b.Name == image.SampleExporter {
			exporterImage = b.Ref
		}
	}
	bin, err := framework.Build(ctx, "./test/e2e/node/probe")
	if err != nil {
		return nil, err
	}
	probe, err := image.Write(image.Spec{
		Name:       probeName,
		Files:      []image.File{{Path: "/probe", Source: bin, Mode: 0o755}},
		User:       image.NonRootUser,
		Entrypoint: []string{"/probe"},
	}, framework.ImageVersion, filepath.Join(filepath.Dir(bin), probeName+".tar"))
	if err != nil {
		return nil, err
	}
	probeImage = probe.Ref
	opts.Images = append(opts.Images, probe.Path)
	return opts, nil
}
