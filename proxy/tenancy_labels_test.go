package proxy

import (
	"slices"
	"testing"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
	"github.com/rbac-proxy/rbac-proxy/proxy/tenancy"
)

// The flag's default and the filter's are one list, kept twice only so that
// proxy/config (and with it the webhook) does not link the Prometheus parser.
func TestTenancyLabelDefaultsAgree(t *testing.T) {
	if !slices.Equal(config.DefaultTenancyNamespaceLabels, tenancy.DefaultNamespaceLabels) {
		t.Errorf("config.DefaultTenancyNamespaceLabels = %q, tenancy.DefaultNamespaceLabels = %q: they must be one list",
			config.DefaultTenancyNamespaceLabels, tenancy.DefaultNamespaceLabels)
	}
}
