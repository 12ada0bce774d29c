package image

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// header is what a test reads back of one tar header.
type header struct {
	name     string
	typ      byte
	mode     int64
	uid, gid int
}

// layerBytes is the layer of s, as Write streams it.
func layerBytes(s Spec) ([]byte, error) {
	entries, err := s.entries()
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	err = writeLayer(&b, entries)
	return b.Bytes(), err
}

func TestLayer(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "bin")
	if err := os.WriteFile(src, []byte("#!static"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(src, link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		files   []File
		want    []header
		wantErr string
	}{
		{
			name:  "parents added, sorted, modes and owners kept",
			files: []File{{Path: "/usr/bin/x", Source: src, Mode: 0o755}, {Path: "/data", Mode: 0o700, UID: 65534, GID: 65534}, {Path: "/a", Source: link, Mode: 0o644}},
			want: []header{
				{"a", tar.TypeReg, 0o644, 0, 0},
				{"data/", tar.TypeDir, 0o700, 65534, 65534},
				{"usr/", tar.TypeDir, 0o755, 0, 0},
				{"usr/bin/", tar.TypeDir, 0o755, 0, 0},
				{"usr/bin/x", tar.TypeReg, 0o755, 0, 0},
			},
		},
		{
			name:  "a declared parent keeps its own mode",
			files: []File{{Path: "/etc/p/conf", Source: src, Mode: 0o644}, {Path: "/etc", Mode: 0o711}},
			want: []header{
				{"etc/", tar.TypeDir, 0o711, 0, 0},
				{"etc/p/", tar.TypeDir, 0o755, 0, 0},
				{"etc/p/conf", tar.TypeReg, 0o644, 0, 0},
			},
		},
		{name: "relative path", files: []File{{Path: "bin/x", Source: src}}, wantErr: "not absolute"},
		{name: "root", files: []File{{Path: "/"}}, wantErr: "not absolute"},
		{name: "twice", files: []File{{Path: "/x", Source: src}, {Path: "/x/", Source: src}}, wantErr: "twice"},
		{name: "under a file", files: []File{{Path: "/x", Source: src}, {Path: "/x/y", Source: src}}, wantErr: "a file"},
		{name: "missing source", files: []File{{Path: "/x", Source: filepath.Join(dir, "none")}}, wantErr: "reading"},
		{name: "source a folder", files: []File{{Path: "/x", Source: dir}}, wantErr: "not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := layerBytes(Spec{Files: tc.files})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []header
			tr := tar.NewReader(bytes.NewReader(b))
			for {
				h, err := tr.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, header{h.Name, h.Typeflag, h.Mode, h.Uid, h.Gid})
				if !h.ModTime.Equal(time.Unix(0, 0)) || h.Uname != "" || h.Gname != "" {
					t.Errorf("%s: mtime %v, owner names %q %q: not reproducible", h.Name, h.ModTime, h.Uname, h.Gname)
				}
				if h.Typeflag == tar.TypeReg {
					if content, _ := io.ReadAll(tr); string(content) != "#!static" {
						t.Errorf("%s holds %q", h.Name, content)
					}
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("entries %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("entry %d = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// The same files give the same layer, whatever order they are listed in and
// whatever the source files' own times.
func TestLayerReproducible(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, p := range []string{a, b} {
		if err := os.WriteFile(p, []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files := []File{{Path: "/x/a", Source: a, Mode: 0o644}, {Path: "/y/b", Source: b, Mode: 0o755}}
	first, err := layerBytes(Spec{Files: files})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(a, time.Now(), time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	second, err := layerBytes(Spec{Files: []File{files[1], files[0]}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, second) {
		t.Error("the same files gave two different layers")
	}
}
