package image

import (
	"bytes"
	"debug/elf"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rbac-proxy/rbac-proxy/test/framework"
)

// maxTrackedSize bounds what the repository holds: source, docs, testdata. The
// largest file today is a few hundred KB; a built binary is tens of MB.
const maxTrackedSize = 2 << 20

// No built program is committed: every tracked file is checked for an
// executable's magic number (ELF) and for a build's size, so a binary that
// `go build` dropped beside its package never lands.
func TestNoBinaryTracked(t *testing.T) {
	root, err := framework.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("git", "ls-files", "-z")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("listing the tracked files (git ls-files): %v", err)
	}
	files := bytes.Split(bytes.TrimRight(out, "\x00"), []byte{0})
	if len(files) < 10 {
		t.Fatalf("git ls-files listed %d files: not this repository", len(files))
	}
	for _, name := range files {
		path := filepath.Join(root, string(name))
		info, err := os.Lstat(path)
		if err != nil {
			continue // deleted in the working tree, not committed yet
		}
		if !info.Mode().IsRegular() {
			continue
		}
		if info.Size() > maxTrackedSize {
			t.Errorf("%s is %d bytes, more than %d: built output does not belong in the repository", name, info.Size(), maxTrackedSize)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		magic := make([]byte, len(elf.ELFMAG))
		_, err = io.ReadFull(f, magic)
		f.Close()
		if err == nil && string(magic) == elf.ELFMAG {
			t.Errorf("%s is an ELF executable: built output does not belong in the repository", name)
		}
	}
}
