package inject

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
)

const testNamespace = "team"

// testDefaults are the defaults the tests start from, as the webhook's DefaultConfig compiles
// them with a default issuer and a scrapers' CA.
func testDefaults() *Defaults {
	issuer := &IssuerRef{Kind: "ClusterIssuer", Group: certManagerGroup, Name: "rbac-proxy-ca"}
	return &Defaults{
		Image:         "rbac-proxy:test",
		PullPolicy:    corev1.PullIfNotPresent,
		Issuer:        issuer,
		ProxyPort:     8443,
		EndpointsPort: 8444,
		SidecarMode:   SidecarNative,
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")},
		},
		ClusterDomain:  "cluster.local",
		AllowedIssuers: IssuerAllowList{Default: issuer, ScrapersNamespace: "rbac-proxy"},
		ScrapersCA:     &SecretRef{Namespace: "rbac-proxy", Name: "rbac-proxy-scrapers-ca"},
	}
}

// roundTrip says how the proxy's reading of the policy's command line (its own flags, then
// Config, which validates) differs from the policy's proxy Config, "" when it reads the same:
// the proxy accepts the rendered args and means what the policy says.
func roundTrip(p *Policy) string {
	got, err := ProxyConfigOf(p.Args)
	if err != nil {
		return fmt.Sprintf("the proxy refuses %q: %v", p.Args, err)
	}
	if field := config.Diff(p.ProxyConfig(), got); field != "" {
		return fmt.Sprintf("the proxy reads %s of %q otherwise than the policy", field, p.Args)
	}
	return ""
}
