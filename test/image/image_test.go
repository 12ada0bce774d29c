// Package image checks the images without a Docker engine: the Dockerfile
// and internal/image describe the same rbac-proxy image, and `make image`
// writes static binaries and images that read back as specified.
package image

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rbac-proxy/rbac-proxy/internal/image"
	"github.com/rbac-proxy/rbac-proxy/test/framework"
)

// The Dockerfile builds the proxy image's binaries from the same packages,
// with the same flags as the Makefile, statically; the Makefile builds every
// binary internal/image reads.
func TestDockerfileBuildsWhatMakeBuilds(t *testing.T) {
	root, err := framework.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dockerfile := read(t, filepath.Join(root, "Dockerfile"))
	makefile := read(t, filepath.Join(root, "Makefile"))
	bin := t.TempDir()
	inProxyImage := map[string]bool{}
	for _, f := range proxySpec(t, bin, "v0.0.0-test").Files {
		if filepath.Dir(f.Source) == bin {
			inProxyImage[filepath.Base(f.Source)] = true
		}
	}
	for _, p := range image.Programs {
		if !strings.Contains(makefile, "-o $(BIN)/"+p.Binary+" "+p.Package) {
			t.Errorf("the Makefile does not build %s from %s", p.Binary, p.Package)
		}
		if !inProxyImage[p.Binary] {
			continue // in the tests' images only
		}
		line := regexp.MustCompile(`go build [^\n]*-o /out/` + p.Binary + ` ` + regexp.QuoteMeta(p.Package)).FindString(dockerfile)
		if line == "" {
			t.Errorf("the Dockerfile does not build %s from %s", p.Binary, p.Package)
			continue
		}
		for _, flag := range []string{"-trimpath", "internal/version.Version="} {
			if !strings.Contains(line, flag) {
				t.Errorf("the Dockerfile builds %s without %s", p.Binary, flag)
			}
		}
	}
	if !strings.Contains(dockerfile, "CGO_ENABLED=0") {
		t.Error("the Dockerfile does not build with CGO_ENABLED=0")
	}
	if !strings.Contains(makefile, "export CGO_ENABLED := 0") {
		t.Error("the Makefile does not build with CGO_ENABLED=0")
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// proxySpec is internal/image's rbac-proxy spec for binaries in bin.
func proxySpec(t *testing.T, bin, version string) image.Spec {
	t.Helper()
	specs, err := image.Specs(bin, version)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range specs {
		if s.Name == image.Proxy {
			return s
		}
	}
	t.Fatalf("internal/image has no %s spec", image.Proxy)
	return image.Spec{}
}
