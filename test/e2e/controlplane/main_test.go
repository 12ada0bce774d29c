// Package controlplane proves the test control plane is real: each test
// depends on one component doing its actual job and fails without it.
package controlplane

import (
	"os"
	"testing"

	"github.com/rbac-proxy/rbac-proxy/test/framework"
)

var cp *framework.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(framework.Main(m, framework.Options{ControllerManager: true, CertManager: true}, &cp))
}
