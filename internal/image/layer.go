package image

import (
	"archive/tar"
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

// entry is a File as the layer holds it: its path relative to the root and,
// for a file, the size its source had when the entries were listed.
type entry struct {
	File
	name string
	size int64
}

// entries are s.Files sorted by path with the parent folders each needs
// (0755, root) added; every source is checked to be a regular file, so a
// missing binary fails here rather than half way through a tarball.
func (s Spec) entries() ([]entry, error) {
	byName := map[string]entry{}
	for _, f := range s.Files {
		name := strings.TrimPrefix(path.Clean(f.Path), "/")
		if !path.IsAbs(f.Path) || name == "" {
			return nil, fmt.Errorf("file path %q is not absolute", f.Path)
		}
		if _, dup := byName[name]; dup {
			return nil, fmt.Errorf("%s is in the image twice", f.Path)
		}
		e := entry{File: f, name: name}
		if f.Source != "" {
			fi, err := os.Stat(f.Source)
			if err != nil {
				return nil, fmt.Errorf("reading %s for %s: %w", f.Source, f.Path, err)
			}
			if !fi.Mode().IsRegular() {
				return nil, fmt.Errorf("%s for %s is not a regular file", f.Source, f.Path)
			}
			e.size = fi.Size()
		}
		byName[name] = e
	}
	for _, f := range s.Files {
		name := strings.TrimPrefix(path.Clean(f.Path), "/")
		for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
			parent, ok := byName[dir]
			if !ok {
				byName[dir] = entry{File: File{Path: "/" + dir, Mode: 0o755}, name: dir}
			} else if parent.Source != "" {
				return nil, fmt.Errorf("%s is under %s, a file", f.Path, parent.Path)
			}
		}
	}
	list := make([]entry, 0, len(byName))
	for _, e := range byName {
		list = append(list, e)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].name < list[j].name })
	return list, nil
}

// writeLayer writes entries as an uncompressed tar, every time the epoch and
// no user or group names, so the same inputs give the same bytes. Files are
// streamed from their sources, which must still have their listed sizes.
func writeLayer(w io.Writer, entries []entry) error {
	tw := tar.NewWriter(w)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Mode: int64(e.Mode.Perm()), Uid: e.UID, Gid: e.GID, ModTime: epoch, Format: tar.FormatPAX}
		if e.Source == "" {
			hdr.Typeflag, hdr.Name = tar.TypeDir, e.name+"/"
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			continue
		}
		hdr.Typeflag, hdr.Size = tar.TypeReg, e.size
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if err := copyFile(tw, e); err != nil {
			return err
		}
	}
	return tw.Close()
}

func copyFile(w io.Writer, e entry) error {
	f, err := os.Open(e.Source)
	if err != nil {
		return fmt.Errorf("reading %s for %s: %w", e.Source, e.Path, err)
	}
	defer f.Close()
	if _, err := io.CopyN(w, f, e.size); err != nil {
		return fmt.Errorf("reading %s for %s (changed while the image was built?): %w", e.Source, e.Path, err)
	}
	return nil
}
