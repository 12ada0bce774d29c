package framework

import (
	"fmt"
	"os"
	"path/filepath"
)

// RepoRoot returns the repository root: the nearest parent of the working
// directory holding the root go.mod (the one without a parent module).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding the repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "Makefile")); err == nil {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("finding the repository root: no go.mod with a Makefile above the working directory")
		}
		dir = parent
	}
}

// BinDir returns the folder holding the control-plane binaries: the
// KUBEBUILDER_ASSETS environment variable when set, else bin/ at the
// repository root.
func BinDir() (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "bin"), nil
}

// binary returns the path of a required binary in dir, or an error telling
// the reader how to build it.
func binary(dir, name string) (string, error) {
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("control-plane binary %s is missing (run `make tools`): %w", p, err)
	}
	return p, nil
}
