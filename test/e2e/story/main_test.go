// Package story runs rbac-proxy's user story (test/story, what `make demo`
// shows) as a test, and goes on with what a user tries next: rotating the
// proxy's certificate, deleting the workload, a namespace without the label.
package story

import (
	"os"
	"testing"

	"github.com/rbac-proxy/rbac-proxy/test/framework"
)

var cp *framework.ControlPlane

func TestMain(m *testing.M) {
	// CertManagerOwnerRef: cert-manager's --enable-certificate-owner-ref, so
	// a Certificate owns its Secret and deleting the Deployment removes both.
	// Upstream's default is off (see docs/helm.md); the deletion test needs it on.
	os.Exit(framework.Main(m, framework.Options{ControllerManager: true, CertManager: true, CertManagerOwnerRef: true}, &cp))
}
