// Package proxy_test runs the rbac-proxy binary against a real
// kube-apiserver: every TokenReview and SubjectAccessReview in these tests is
// answered by the API server, through a counting front that can also play a
// black hole.
package proxy_test

import (
	"context"
	"fmt"
	"os"
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
	var err error
	if proxyBin, err = framework.Build(context.Background(), "./cmd/proxy"); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	defer os.RemoveAll(filepath.Dir(proxyBin))
	return framework.Main(m, framework.Options{}, &cp)
}
