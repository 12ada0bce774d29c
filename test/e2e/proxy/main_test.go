// Package proxy_test runs the rbac-proxy binary against a real
// kube-apiserver: every TokenReview and SubjectAccessReview in these tests is
// answered by the API server, through a counting front that can also play a
// black hole.
package proxy_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rbac-proxy/rbac-proxy/test/framework"
)

var (
	cp *framework.ControlPlane
	// proxyBin is the rbac-proxy binary built for this run.
	proxyBin string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "rbac-proxy-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	proxyBin = filepath.Join(dir, "rbac-proxy")
	build := exec.Command("go", "build", "-o", proxyBin, "github.com/rbac-proxy/rbac-proxy/cmd/proxy")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: building rbac-proxy: %v\n", err)
		return 1
	}
	return framework.Main(m, framework.Options{}, &cp)
}
