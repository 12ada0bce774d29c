package framework

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sync"
)

// Build compiles a main package of this repository (e.g. "./cmd/webhook")
// into a temporary folder and returns the binary's path. The Go build cache
// makes a second build of unchanged code take a second or two.
func Build(ctx context.Context, pkg string) (string, error) {
	dir, err := buildFolder("build-")
	if err != nil {
		return "", fmt.Errorf("creating a folder for %s: %w", pkg, err)
	}
	return buildTo(ctx, pkg, filepath.Join(dir, path.Base(pkg)))
}

// builds is the one folder a process builds binaries and images into, so
// that all of it goes at once (RemoveBuilds): a run's images alone are some
// 200 MB.
var builds struct {
	mu  sync.Mutex
	dir string
}

// buildFolder is a new folder inside the process's build folder.
func buildFolder(prefix string) (string, error) {
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if builds.dir == "" {
		dir, err := os.MkdirTemp("", "rbac-proxy-builds-")
		if err != nil {
			return "", err
		}
		builds.dir = dir
	}
	return os.MkdirTemp(builds.dir, prefix)
}

// RemoveBuilds removes everything Build and BuildImages wrote in this
// process; Main calls it once the tests are done and the control plane is
// stopped. A later Build starts a new folder.
func RemoveBuilds() error {
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if builds.dir == "" {
		return nil
	}
	err := os.RemoveAll(builds.dir)
	builds.dir = ""
	return err
}

// buildTo compiles the main package pkg into out, statically (CGO off), as
// images need their binaries.
func buildTo(ctx context.Context, pkg, out string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building %s: %w\n%s", pkg, err, stderr.String())
	}
	return out, nil
}

// Helm runs bin/helm with args against this control plane and returns its
// standard output; the error holds its standard error.
func (cp *ControlPlane) Helm(ctx context.Context, args ...string) (string, error) {
	return RunHelm(ctx, cp.KubeconfigPath, args...)
}

// RunHelm runs bin/helm with args; kubeconfig may be empty for commands that
// need no cluster (lint, template). Helm's own state goes to a temporary
// folder so nothing in the user's home is read or written.
func RunHelm(ctx context.Context, kubeconfig string, args ...string) (string, error) {
	bin, err := BinDir()
	if err != nil {
		return "", err
	}
	helm, err := binary(bin, "helm")
	if err != nil {
		return "", err
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	home, err := os.MkdirTemp("", "rbac-proxy-helm-")
	if err != nil {
		return "", fmt.Errorf("creating helm's home: %w", err)
	}
	defer os.RemoveAll(home)
	cmd := exec.CommandContext(ctx, helm, args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	if kubeconfig != "" {
		cmd.Env = append(cmd.Env, "KUBECONFIG="+kubeconfig)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %v: %w: %s", args, err, stderr.String())
	}
	return stdout.String(), nil
}
