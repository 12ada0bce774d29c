package inject

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
)

// SidecarMode says where the proxy container goes.
type SidecarMode string

const (
	// SidecarNative renders the proxy as an init container with restartPolicy Always: it starts
	// before the app and stops after it.
	SidecarNative SidecarMode = "native"
	// SidecarContainer renders the proxy as a regular container, for clusters or tools that do
	// not handle native sidecars.
	SidecarContainer SidecarMode = "container"
)

// Defaults is a validated Config in the types the policy and render use.
type Defaults struct {
	Image         string
	PullPolicy    corev1.PullPolicy
	Issuer        *IssuerRef
	ProxyPort     int32
	EndpointsPort int32
	SidecarMode   SidecarMode
	Resources     corev1.ResourceRequirements
	Verbosity     int
	ClusterDomain string
	// AllowedIssuers are the issuers Pods may name, the default one included.
	AllowedIssuers IssuerAllowList
	// DNSSuffixes are the allowed domains outside the namespace, each without a leading dot.
	DNSSuffixes []string
	// TokenVerification is how the proxy verifies ServiceAccount tokens unless a Pod says.
	TokenVerification config.SATokenVerification
	// ScrapersCA locates the scrapers' CA Secret; nil when none is configured.
	ScrapersCA *SecretRef
}

// SecretRef names a Secret in a namespace.
type SecretRef struct {
	Namespace string
	Name      string
}

func (r SecretRef) String() string { return r.Namespace + "/" + r.Name }
