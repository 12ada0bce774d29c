package image

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// buildStatic builds the pause program statically into dir.
func buildStatic(t *testing.T, dir string) string {
	t.Helper()
	out := filepath.Join(dir, Pause)
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", out, "github.com/rbac-proxy/rbac-proxy/test/images/pause")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

// Write gives a tarball tagged name:version without a registry host, the
// spec's config, and the same bytes for the same spec.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "prog")
	if err := os.WriteFile(src, []byte("program"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := Spec{
		Name:       "thing",
		Files:      []File{{Path: "/prog", Source: src, Mode: 0o755}},
		User:       "1:2",
		Entrypoint: []string{"/prog"},
		Cmd:        []string{"--flag"},
		Env:        []string{"A=b"},
		WorkingDir: "/",
		Labels:     map[string]string{"k": "v"},
	}
	first, err := Write(s, "v1", filepath.Join(dir, "1.tar"))
	if err != nil {
		t.Fatal(err)
	}
	second, err := Write(s, "v1", filepath.Join(dir, "2.tar"))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(first.Path)
	b, _ := os.ReadFile(second.Path)
	if !bytes.Equal(a, b) || first.ID != second.ID {
		t.Error("the same spec gave two different tarballs")
	}
	if first.Ref != "thing:v1" || first.Size != int64(len(a)) {
		t.Errorf("Built = %+v", first)
	}

	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(first.Path) })
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 1 || !reflect.DeepEqual(m[0].RepoTags, []string{"thing:v1"}) {
		t.Errorf("manifest.json = %+v, want one image tagged thing:v1", m)
	}
	img, err := tarball.ImageFromPath(first.Path, nil)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if c.User != s.User || !reflect.DeepEqual(c.Entrypoint, s.Entrypoint) || !reflect.DeepEqual(c.Cmd, s.Cmd) ||
		!reflect.DeepEqual(c.Env, s.Env) || c.WorkingDir != s.WorkingDir || !reflect.DeepEqual(c.Labels, s.Labels) {
		t.Errorf("config %+v, want the spec's %+v", c, s)
	}
	if cf.OS != "linux" || cf.Architecture == "" || !cf.Created.Time.Equal(epoch) {
		t.Errorf("config os %q architecture %q created %v", cf.OS, cf.Architecture, cf.Created)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 3 {
		t.Errorf("%d files in the output folder, want prog and the two tarballs (no leftovers)", len(entries))
	}
}

// A file that cannot be read leaves no tarball behind.
func TestWriteFailsWhole(t *testing.T) {
	dir := t.TempDir()
	s := Spec{Name: "broken", Files: []File{{Path: "/x", Source: filepath.Join(dir, "missing"), Mode: 0o755}}}
	if _, err := Write(s, "v1", filepath.Join(dir, "broken.tar")); err == nil {
		t.Fatal("Write succeeded without its file")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("left %v behind", entries)
	}
}

// BuildAll names the binary that is missing and how to build it.
func TestBuildAllNeedsTheBinaries(t *testing.T) {
	_, err := BuildAll(context.Background(), t.TempDir(), t.TempDir(), "v1")
	if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "make image") {
		t.Errorf("err = %v, want one naming the missing binary and make image", err)
	}
}
