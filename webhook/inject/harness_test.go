package inject

import (
	"fmt"
	"slices"

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

// proxyArgsProblems starts the proxy's configuration from args as the proxy binary does (its flag
// set, then Config, which validates) and checks that it enforces what the policy says: no
// warning, and every list and the resource attributes exactly as the webhook parsed them. The
// comparison is written out here, field by field, rather than taken from the webhook's own check,
// so that it also tests that check.
func proxyArgsProblems(args []string, p *Policy) []string {
	flags := config.NewFlags("rbac-proxy")
	if err := flags.Parse(args); err != nil {
		return []string{fmt.Sprintf("the proxy refuses %q: %v", args, err)}
	}
	cfg, err := flags.Config()
	if err != nil {
		return []string{fmt.Sprintf("the proxy's configuration of %q is invalid: %v", args, err)}
	}
	var problems []string
	if w := flags.Warnings(); len(w) > 0 {
		problems = append(problems, fmt.Sprintf("the proxy warns about %q: %v", args, w))
	}
	for _, l := range []struct {
		what      string
		got, want []string
	}{
		{"token audiences", cfg.Authentication.Audiences, p.TokenAudiences},
		{"allowed paths", cfg.Paths.Allow, p.AllowPaths},
		{"ignored paths", cfg.Paths.Ignore, p.IgnorePaths},
		{"allowed users", cfg.Authorization.Allowed.Users, p.AllowedUsers},
		{"allowed groups", cfg.Authorization.Allowed.Groups, p.AllowedGroups},
	} {
		if !slices.Equal(l.got, l.want) {
			problems = append(problems, fmt.Sprintf("the proxy's %s are %q, the policy's %q", l.what, l.got, l.want))
		}
	}
	if string(cfg.Authorization.Mode) != string(p.Authz) {
		problems = append(problems, fmt.Sprintf("the proxy authorizes with %s, the policy with %s", cfg.Authorization.Mode, p.Authz))
	}
	got := cfg.Authorization.ResourceAttributes
	switch want := p.ResourceAttributes; {
	case (got == nil) != (want == nil):
		problems = append(problems, fmt.Sprintf("the proxy's resource attributes are %+v, the policy's %+v", got, want))
	case want != nil && *got != config.ResourceAttributes(*want):
		problems = append(problems, fmt.Sprintf("the proxy's resource attributes are %+v, the policy's %+v", *got, *want))
	}
	return problems
}
