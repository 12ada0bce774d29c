package image

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
)

// File is one entry of an image's filesystem.
type File struct {
	// Path is where it lies in the image, absolute ("/rbac-proxy").
	Path string
	// Source is the host file whose content it holds (symbolic links
	// followed); empty for a directory.
	Source string
	// Mode is its permission bits.
	Mode fs.FileMode
	// UID and GID own it (0, root, unless set).
	UID, GID int
}

// layer renders s.Files as an uncompressed tar: entries sorted by path, the
// parent directories each file needs added (0755, root), every time the
// epoch and no user or group names, so the same inputs give the same bytes.
func (s Spec) layer() ([]byte, error) {
	entries := map[string]File{}
	for _, f := range s.Files {
		p := strings.TrimPrefix(path.Clean(f.Path), "/")
		if p == "" || p == "." || !path.IsAbs(f.Path) {
			return nil, fmt.Errorf("file path %q is not absolute", f.Path)
		}
		if _, dup := entries[p]; dup {
			return nil, fmt.Errorf("%s is in the image twice", f.Path)
		}
		entries[p] = f
	}
	for _, f := range s.Files {
		p := strings.TrimPrefix(path.Clean(f.Path), "/")
		for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
			parent, ok := entries[dir]
			if !ok {
				entries[dir] = File{Path: "/" + dir, Mode: 0o755}
			} else if parent.Source != "" {
				return nil, fmt.Errorf("%s is under %s, a file", p, parent.Path)
			}
		}
	}
	paths := make([]string, 0, len(entries))
	for p := range entries {
		paths = append(paths, p)
	}
	sort.Strings(paths)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		f := entries[p]
		hdr := &tar.Header{Name: p, Mode: int64(f.Mode.Perm()), Uid: f.UID, Gid: f.GID, ModTime: epoch, Format: tar.FormatPAX}
		if f.Source == "" {
			hdr.Typeflag, hdr.Name = tar.TypeDir, p+"/"
			if err := tw.WriteHeader(hdr); err != nil {
				return nil, err
			}
			continue
		}
		content, err := os.ReadFile(f.Source)
		if err != nil {
			return nil, fmt.Errorf("reading %s for %s: %w", f.Source, f.Path, err)
		}
		hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(content))
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := io.Copy(tw, bytes.NewReader(content)); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
