// Package image checks what the Dockerfile would ship without a Docker
// engine: `make build` produces the same static binaries the image holds.
package image

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rbac-proxy/rbac-proxy/test/framework"
)

var binaries = map[string]string{"rbac-proxy": "./cmd/proxy", "rbac-proxy-injector": "./cmd/webhook"}

// The Dockerfile builds each binary from the same package, with the same
// flags as the Makefile, statically.
func TestDockerfileBuildsWhatMakeBuilds(t *testing.T) {
	root, err := framework.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dockerfile := read(t, filepath.Join(root, "Dockerfile"))
	makefile := read(t, filepath.Join(root, "Makefile"))
	for name, pkg := range binaries {
		line := regexp.MustCompile(`go build [^\n]*-o /out/` + name + ` ` + regexp.QuoteMeta(pkg)).FindString(dockerfile)
		if line == "" {
			t.Errorf("the Dockerfile does not build %s from %s", name, pkg)
			continue
		}
		for _, flag := range []string{"-trimpath", "internal/version.Version="} {
			if !strings.Contains(line, flag) {
				t.Errorf("the Dockerfile builds %s without %s", name, flag)
			}
		}
		if !strings.Contains(makefile, "-o $(BIN)/"+name+" "+pkg) {
			t.Errorf("the Makefile does not build %s from %s", name, pkg)
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "FROM scratch", "USER 65532:65532", `ENTRYPOINT ["/rbac-proxy"]`} {
		if !strings.Contains(dockerfile, want) {
			t.Errorf("the Dockerfile lacks %q", want)
		}
	}
	if !strings.Contains(makefile, "export CGO_ENABLED := 0") {
		t.Error("the Makefile does not build with CGO_ENABLED=0")
	}
}

// make build produces static executables: no program interpreter, no shared
// libraries, so they run on scratch.
func TestMakeBuildIsStatic(t *testing.T) {
	root, err := framework.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	cmd := exec.CommandContext(t.Context(), "make", "build", "BIN="+bin, "VERSION=v0.0.0-test")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	for name := range binaries {
		path := filepath.Join(bin, name)
		f, err := elf.Open(path)
		if err != nil {
			t.Fatalf("%s is not an ELF executable: %v", name, err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s asks for a program interpreter: it is not static", name)
			}
		}
		if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
			t.Errorf("%s needs shared libraries %v", name, libs)
		}
		f.Close()
		out, err := exec.CommandContext(t.Context(), path, "--version").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "v0.0.0-test") {
			t.Errorf("%s --version = %q (%v), want the version set at link time", name, out, err)
		}
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
