// Package check is the end-to-end suite of `rbac-proxy-injector check`: a real control plane with
// the chart installed, holding one workload per failure mode check reports and a healthy one.
package check

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/rbac-proxy/rbac-proxy/test/framework"
)

var cp *framework.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

// run is framework.Main with one more process to stop before the control plane: the injector
// the tests upgrade to, which the API server would otherwise wait for as it stops.
func run(m *testing.M) int {
	// The API server's warnings (the webhook's, relayed) are what the tests read, not logs.
	ctrllog.SetLogger(logr.Discard())
	defer func() {
		if err := framework.RemoveBuilds(); err != nil {
			fmt.Fprintf(os.Stderr, "removing the test's builds: %v\n", err)
		}
	}()
	// No node: the Deployments' Pods stay Pending, and their specs are what check reads.
	// kube-controller-manager makes them, cert-manager issues the workloads' Certificates.
	started, err := framework.Start(context.Background(), framework.Options{ControllerManager: true, CertManager: true})
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: starting the test control plane: %v\n", err)
		return 1
	}
	cp = started
	code := m.Run()
	stopUpgradedInjector()
	if code != 0 {
		cp.DumpLogs(os.Stderr)
	}
	if err := cp.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stopping the test control plane: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}
