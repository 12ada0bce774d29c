// Package image builds the project's container images as docker-archive tarballs from static binaries, with go-containerregistry.
package image

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// epoch is every timestamp an image holds (config, history, file mtimes), so
// the same binaries give the same tarball byte for byte.
var epoch = time.Unix(0, 0).UTC()

// Built is one image written to disk.
type Built struct {
	Name string // the repository, e.g. "rbac-proxy"
	Ref  string // the tag it is imported as, e.g. "rbac-proxy:dev"
	Path string // the docker-archive tarball
	Size int64  // the tarball's size in bytes
	ID   string // the config's digest: what containerd and Docker call the image ID
}

// BuildAll writes every image of Specs to outDir/<name>.tar from the
// binaries in binDir, tagged with version.
func BuildAll(ctx context.Context, binDir, outDir, version string) ([]Built, error) {
	for _, p := range Programs {
		if _, err := os.Stat(filepath.Join(binDir, p.Binary)); err != nil {
			return nil, fmt.Errorf("the images need %s, built from %s (make image builds it): %w", p.Binary, p.Package, err)
		}
	}
	specs, err := Specs(binDir, version)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", outDir, err)
	}
	var built []Built
	for _, s := range specs {
		if err := ctx.Err(); err != nil {
			return built, err
		}
		b, err := Write(s, version, filepath.Join(outDir, s.Name+".tar"))
		if err != nil {
			return built, err
		}
		built = append(built, b)
	}
	return built, nil
}

// Write builds the image s describes and writes it to path as a
// docker-archive tarball tagged Ref(s.Name, version). The file appears
// whole or not at all: it is written beside path and renamed.
func Write(s Spec, version, path string) (Built, error) {
	img, err := s.image()
	if err != nil {
		return Built{}, fmt.Errorf("image %s: %w", s.Name, err)
	}
	ref := Ref(s.Name, version)
	// No registry host: containerd and Docker apply their own default when
	// they import the archive, and the tarball's RepoTags stays "name:tag".
	tag, err := name.NewTag(ref, name.WithDefaultRegistry(""))
	if err != nil {
		return Built{}, fmt.Errorf("image %s: %w", s.Name, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return Built{}, fmt.Errorf("image %s: %w", s.Name, err)
	}
	defer os.Remove(tmp.Name())
	if err := tarball.Write(tag, img, tmp); err != nil {
		tmp.Close()
		return Built{}, fmt.Errorf("image %s: writing %s: %w", s.Name, path, err)
	}
	if err := tmp.Close(); err != nil {
		return Built{}, fmt.Errorf("image %s: writing %s: %w", s.Name, path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return Built{}, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return Built{}, fmt.Errorf("image %s: %w", s.Name, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return Built{}, err
	}
	id, err := img.ConfigName()
	if err != nil {
		return Built{}, err
	}
	return Built{Name: s.Name, Ref: ref, Path: path, Size: fi.Size(), ID: id.String()}, nil
}

// image assembles s: one layer holding its files on an empty base.
func (s Spec) image() (v1.Image, error) {
	entries, err := s.entries()
	if err != nil {
		return nil, err
	}
	// The layer is rendered anew from the files each time it is read (for
	// its digests, then for the tarball), so only its compressed form is
	// held in memory.
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		r, w := io.Pipe()
		go func() { w.CloseWithError(writeLayer(w, entries)) }()
		return r, nil
	}, tarball.WithCompressedCaching)
	if err != nil {
		return nil, err
	}
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		Architecture: runtime.GOARCH,
		OS:           "linux",
		Created:      v1.Time{Time: epoch},
		Config: v1.Config{
			User:       s.User,
			Entrypoint: s.Entrypoint,
			Cmd:        s.Cmd,
			Env:        s.Env,
			WorkingDir: s.WorkingDir,
			Labels:     s.Labels,
		},
	})
	if err != nil {
		return nil, err
	}
	return mutate.Append(img, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: v1.Time{Time: epoch}, CreatedBy: "rbac-proxy internal/image", Comment: s.Name},
	})
}
