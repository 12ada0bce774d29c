// Package chart tests the Helm chart: lint and template offline, and an
// install into a real control plane where cert-manager issues the webhook's
// certificate, cainjector fills the caBundle and the webhook injects a Pod.
package chart

import (
	"os"
	"testing"

	"github.com/rbac-proxy/rbac-proxy/test/framework"
)

var cp *framework.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(framework.Main(m, framework.Options{ControllerManager: true, CertManager: true}, &cp))
}

const chartDir = framework.ChartDir
