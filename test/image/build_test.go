package image

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/rbac-proxy/rbac-proxy/internal/image"
	"github.com/rbac-proxy/rbac-proxy/test/framework"
)

const testVersion = "v0.0.0-test"

// make image writes static binaries and, from them, an image per spec that
// reads back as the spec says: tag, config, every file with its mode, owner
// and content; the same bytes when built again; and, as root, each image's
// program runs from the image's own files alone.
func TestMakeImage(t *testing.T) {
	root, err := framework.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	cmd := exec.CommandContext(t.Context(), "make", "image", "BIN="+bin, "VERSION="+testVersion)
	cmd.Dir = root
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}
	t.Logf("make image: %s\n%s", time.Since(start).Round(time.Millisecond), out)

	for _, p := range image.Programs {
		t.Run("static/"+p.Binary, func(t *testing.T) {
			content, err := os.ReadFile(filepath.Join(bin, p.Binary))
			if err != nil {
				t.Fatal(err)
			}
			if why := notStatic(content); why != "" {
				t.Error(why)
			}
		})
	}
	for _, name := range []string{"rbac-proxy", "rbac-proxy-injector"} {
		out, err := exec.CommandContext(t.Context(), filepath.Join(bin, name), "--version").CombinedOutput()
		if err != nil || !strings.Contains(string(out), testVersion) {
			t.Errorf("%s --version = %q (%v), want the version set at link time", name, out, err)
		}
	}

	specs, err := image.Specs(bin, testVersion)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(image.PrometheusBinary); err == nil && len(specs) != 4 {
		t.Errorf("%d specs with %s installed, want 4", len(specs), image.PrometheusBinary)
	}
	for _, s := range specs {
		t.Run(s.Name, func(t *testing.T) {
			fsys := checkTarball(t, filepath.Join(bin, "images", s.Name+".tar"), s)
			runFromImage(t, s, fsys)
		})
	}

	// BuildAll, as the test framework calls it, gives the same bytes.
	again := t.TempDir()
	built, err := image.BuildAll(t.Context(), bin, again, testVersion)
	if err != nil {
		t.Fatal(err)
	}
	if len(built) != len(specs) {
		t.Errorf("BuildAll built %d images, want %d", len(built), len(specs))
	}
	for _, b := range built {
		first, _ := os.ReadFile(filepath.Join(bin, "images", b.Name+".tar"))
		second, _ := os.ReadFile(b.Path)
		if !bytes.Equal(first, second) {
			t.Errorf("%s: two builds from the same binaries differ", b.Name)
		}
		t.Logf("%-40s %6.1f MiB  %s", b.Ref, float64(b.Size)/(1<<20), b.ID)
	}
}

// entry is one file of an image's flattened filesystem.
type entry struct {
	hdr     *tar.Header
	content []byte
}

// checkTarball reads path back with go-containerregistry and compares it
// with s; it returns the image's filesystem by path (without the leading /).
func checkTarball(t *testing.T, path string, s image.Spec) map[string]entry {
	t.Helper()
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(path) })
	if err != nil {
		t.Fatal(err)
	}
	ref := image.Ref(s.Name, testVersion)
	if len(m) != 1 || !reflect.DeepEqual(m[0].RepoTags, []string{ref}) {
		t.Errorf("manifest.json %+v, want one image tagged %s (no registry host)", m, ref)
	}
	img, err := tarball.ImageFromPath(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	want := v1.Config{User: s.User, Entrypoint: s.Entrypoint, Cmd: s.Cmd, Env: s.Env, WorkingDir: s.WorkingDir, Labels: s.Labels}
	if !reflect.DeepEqual(cf.Config, want) {
		t.Errorf("config %+v, want %+v", cf.Config, want)
	}
	if s.User == "" || strings.HasPrefix(s.User, "0") || strings.HasPrefix(s.User, "root") {
		t.Errorf("%s runs as %q: every image runs as a non-root user", s.Name, s.User)
	}
	if cf.OS != "linux" || cf.Architecture == "" {
		t.Errorf("platform %s/%s", cf.OS, cf.Architecture)
	}

	fsys := map[string]entry{}
	tr := tar.NewReader(mutate.Extract(img))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		content, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		fsys[strings.TrimSuffix(h.Name, "/")] = entry{h, content}
	}
	for _, f := range s.Files {
		e, ok := fsys[strings.TrimPrefix(f.Path, "/")]
		if !ok {
			t.Errorf("%s is not in the image", f.Path)
			continue
		}
		wantType := byte(tar.TypeReg)
		if f.Source == "" {
			wantType = tar.TypeDir
		}
		if e.hdr.Typeflag != wantType || fs.FileMode(e.hdr.Mode) != f.Mode || e.hdr.Uid != f.UID || e.hdr.Gid != f.GID {
			t.Errorf("%s: type %q mode %o owner %d:%d, want type %q mode %o owner %d:%d",
				f.Path, e.hdr.Typeflag, e.hdr.Mode, e.hdr.Uid, e.hdr.Gid, wantType, f.Mode, f.UID, f.GID)
		}
		if f.Source != "" {
			src, err := os.ReadFile(f.Source)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(src, e.content) {
				t.Errorf("%s does not hold %s", f.Path, f.Source)
			}
		}
	}
	if len(fsys) < len(s.Files) {
		t.Errorf("%d entries for %d files", len(fsys), len(s.Files))
	}
	checkLoadable(t, fsys, s.Entrypoint[0])
	return fsys
}

// checkLoadable: the entrypoint is an executable ELF of the image, and
// either static or with its interpreter and every DT_NEEDED library (of
// the libraries too) in the image.
func checkLoadable(t *testing.T, fsys map[string]entry, entrypoint string) {
	t.Helper()
	byName := map[string]bool{}
	for p, e := range fsys {
		if e.hdr.Typeflag == tar.TypeReg && strings.Contains(p, "lib") {
			byName[path.Base(p)] = true
		}
	}
	queue := []string{strings.TrimPrefix(entrypoint, "/")}
	seen := map[string]bool{}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		e, ok := fsys[p]
		if !ok {
			t.Errorf("/%s is not in the image", p)
			continue
		}
		if e.hdr.Mode&0o111 == 0 && p == strings.TrimPrefix(entrypoint, "/") {
			t.Errorf("the entrypoint %s is not executable", entrypoint)
		}
		f, err := elf.NewFile(bytes.NewReader(e.content))
		if err != nil {
			t.Errorf("/%s is not an ELF file: %v", p, err)
			continue
		}
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP {
				interp := make([]byte, prog.Filesz)
				_, _ = prog.ReadAt(interp, 0)
				queue = append(queue, strings.TrimPrefix(string(bytes.TrimRight(interp, "\x00")), "/"))
			}
		}
		libs, _ := f.ImportedLibraries()
		for _, lib := range libs {
			if !byName[lib] {
				t.Errorf("/%s needs %s, which is not in the image", p, lib)
			}
		}
		f.Close()
	}
}

// notStatic says why an ELF executable would not run on scratch, or "".
func notStatic(content []byte) string {
	f, err := elf.NewFile(bytes.NewReader(content))
	if err != nil {
		return fmt.Sprintf("not an ELF executable: %v", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return "asks for a program interpreter: it is not static"
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		return fmt.Sprintf("needs shared libraries %v", libs)
	}
	return ""
}
