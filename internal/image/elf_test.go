package image

import (
	"os"
	"strings"
	"testing"
)

// Debian's Prometheus needs its interpreter and libc, each found where the
// loader finds it, the interpreter not copied twice under libc's DT_NEEDED.
func TestSharedLibrariesPrometheus(t *testing.T) {
	if _, err := os.Stat(PrometheusBinary); err != nil {
		t.Skipf("%s is not installed (make test-deps installs it)", PrometheusBinary)
	}
	files, err := sharedLibraries(PrometheusBinary)
	if err != nil {
		t.Fatal(err)
	}
	paths := map[string]bool{}
	var loaders int
	for _, f := range files {
		paths[f.Path] = true
		if strings.Contains(f.Path, "ld-linux") {
			loaders++
		}
		if _, err := os.Stat(f.Source); err != nil {
			t.Errorf("%s: %v", f.Path, err)
		}
	}
	if loaders != 1 {
		t.Errorf("%d copies of the loader in %v, want 1", loaders, paths)
	}
	var libc bool
	for p := range paths {
		libc = libc || strings.HasSuffix(p, "/libc.so.6")
	}
	if !libc {
		t.Errorf("no libc.so.6 in %v", paths)
	}
}

// A static executable needs nothing.
func TestSharedLibrariesStatic(t *testing.T) {
	dir := t.TempDir()
	bin := buildStatic(t, dir)
	files, err := sharedLibraries(bin)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 0 {
		t.Errorf("a static binary needs %v", files)
	}
}
