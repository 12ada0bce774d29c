package image

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"github.com/rbac-proxy/rbac-proxy/internal/image"
	"github.com/rbac-proxy/rbac-proxy/test/framework"
)

// final is what the Dockerfile's last stage says the image is, read with
// BuildKit's own parser, ARGs expanded as `docker build --build-arg` would.
type final struct {
	base       string
	user       string
	entrypoint []string
	labels     map[string]string
	files      map[string]string // path in the image → its source: a build-stage path, or a binary's name
}

func parseDockerfile(t *testing.T, path string, args map[string]string) final {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ast, err := parser.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	stages, _, err := instructions.Parse(ast.AST, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(stages) == 0 {
		t.Fatal("the Dockerfile has no stage")
	}
	last := stages[len(stages)-1]
	got := final{base: last.BaseName, labels: map[string]string{}, files: map[string]string{}}
	lex := shell.NewLex(ast.EscapeToken)
	env := map[string]string{}
	expand := func(word string) (string, error) {
		var kv []string
		for k, v := range env {
			kv = append(kv, k+"="+v)
		}
		s, _, err := lex.ProcessWord(word, shell.EnvsFromSlice(kv))
		return s, err
	}
	for _, cmd := range last.Commands {
		if e, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
			if err := e.Expand(expand); err != nil {
				t.Fatalf("%s: %v", cmd, err)
			}
		}
		switch c := cmd.(type) {
		case *instructions.ArgCommand:
			for _, a := range c.Args {
				v := a.ValueString()
				if given, ok := args[a.Key]; ok {
					v = given
				}
				env[a.Key] = v
			}
		case *instructions.LabelCommand:
			for _, l := range c.Labels {
				got.labels[l.Key] = l.Value
			}
		case *instructions.CopyCommand:
			for _, src := range c.SourcePaths {
				// A binary the build stage wrote to /out is known by its name.
				got.files[c.DestPath] = strings.TrimPrefix(src, "/out/")
			}
		case *instructions.UserCommand:
			got.user = c.User
		case *instructions.EntrypointCommand:
			if c.PrependShell {
				t.Errorf("ENTRYPOINT %v runs through a shell, which scratch has not", c.CmdLine)
			}
			got.entrypoint = c.CmdLine
		default:
			t.Errorf("the last stage's %s is not compared with internal/image: teach this test what it means", cmd.Name())
		}
	}
	return got
}

// The Dockerfile and internal/image's rbac-proxy spec describe the same
// image: base, entrypoint, user, labels, and each file from the same source.
func TestDockerfileAndSpecAgree(t *testing.T) {
	root, err := framework.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	const version = "v0.0.0-test"
	df := parseDockerfile(t, filepath.Join(root, "Dockerfile"), map[string]string{"VERSION": version})

	bin := t.TempDir()
	spec := proxySpec(t, bin, version)
	files := map[string]string{}
	for _, f := range spec.Files {
		if f.Source == "" {
			continue // a directory: the Dockerfile creates parents implicitly
		}
		src := f.Source
		if filepath.Dir(src) == bin {
			src = filepath.Base(src)
		}
		files[f.Path] = src
	}
	for _, c := range []struct {
		what      string
		df, image any
	}{
		{"base", df.base, "scratch"},
		{"entrypoint", df.entrypoint, spec.Entrypoint},
		{"user", df.user, spec.User},
		{"labels", df.labels, spec.Labels},
		{"files", df.files, files},
		{"command", []string(nil), spec.Cmd},
		{"environment", []string(nil), spec.Env},
	} {
		if !reflect.DeepEqual(c.df, c.image) {
			t.Errorf("%s: the Dockerfile says %v, internal/image %v", c.what, c.df, c.image)
		}
	}
	if spec.User != image.NonRootUser {
		t.Errorf("the image runs as %q, want %s", spec.User, image.NonRootUser)
	}
}
