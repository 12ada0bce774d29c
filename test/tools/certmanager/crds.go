package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"sort"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

const certManagerModule = "github.com/cert-manager/cert-manager"

// runCRDs implements `crds [--source=DIR] OUTDIR`: it copies the plain CRD
// manifests deploy/crds/*.yaml of the cert-manager module this binary was
// built with (found in the Go module cache through `go mod download`) into
// OUTDIR, after checking that every document is a complete
// apiextensions.k8s.io/v1 CustomResourceDefinition.
func runCRDs(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("cert-manager-controller crds", flag.ContinueOnError)
	fs.SetOutput(stderr)
	source := fs.String("source", "", "cert-manager module directory (default: located with `go mod download`)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: cert-manager-controller crds [--source=DIR] OUTDIR")
	}
	out := fs.Arg(0)

	dir := *source
	if dir == "" {
		var err error
		if dir, err = certManagerModuleDir(); err != nil {
			return err
		}
	}
	files, err := filepath.Glob(filepath.Join(dir, "deploy", "crds", "*.yaml"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no CRD manifests in %s", filepath.Join(dir, "deploy", "crds"))
	}
	sort.Strings(files)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		names, err := checkCRDs(data)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		dst := filepath.Join(out, filepath.Base(f))
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "wrote %s (%v)\n", dst, names)
	}
	return nil
}

// checkCRDs verifies that data holds only plain (not Helm-templated)
// CustomResourceDefinitions and returns their names.
func checkCRDs(data []byte) ([]string, error) {
	if bytes.Contains(data, []byte("{{")) {
		return nil, errors.New("contains template markers; expected a plain CRD manifest")
	}
	var names []string
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.UnmarshalStrict(doc, &crd); err != nil {
			return nil, err
		}
		if crd.APIVersion != "apiextensions.k8s.io/v1" || crd.Kind != "CustomResourceDefinition" {
			return nil, fmt.Errorf("unexpected object %s %s", crd.APIVersion, crd.Kind)
		}
		if crd.Name == "" || len(crd.Spec.Versions) == 0 {
			return nil, fmt.Errorf("incomplete CustomResourceDefinition %q", crd.Name)
		}
		names = append(names, crd.Name)
	}
	if len(names) == 0 {
		return nil, errors.New("no CustomResourceDefinition")
	}
	return names, nil
}

// certManagerModuleDir returns the module cache directory of the cert-manager
// version compiled into this binary.
func certManagerModuleDir() (string, error) {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "", errors.New("no build info in binary; pass --source")
	}
	var mod *debug.Module
	for _, d := range info.Deps {
		if d.Path == certManagerModule {
			mod = d
			if d.Replace != nil {
				mod = d.Replace
			}
		}
	}
	if mod == nil {
		return "", fmt.Errorf("%s not in build info; pass --source", certManagerModule)
	}
	if mod.Version == "" { // replaced by a local directory
		return mod.Path, nil
	}
	cmd := exec.Command("go", "mod", "download", "-json", mod.Path+"@"+mod.Version)
	cmd.Dir = os.TempDir() // outside any module
	cmd.Stderr = os.Stderr
	stdout, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s@%s: %w", mod.Path, mod.Version, err)
	}
	var dl struct {
		Dir   string
		Error string
	}
	if err := json.Unmarshal(stdout, &dl); err != nil {
		return "", err
	}
	if dl.Error != "" || dl.Dir == "" {
		return "", fmt.Errorf("go mod download %s@%s: %s", mod.Path, mod.Version, dl.Error)
	}
	return dl.Dir, nil
}
