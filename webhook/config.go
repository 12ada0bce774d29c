package webhook

import (
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
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

// DefaultProxyPort and DefaultEndpointsPort are the built-in ports of the proxy.
const (
	DefaultProxyPort     = 8443
	DefaultEndpointsPort = 8444
)

// Config is the webhook's defaults, as set by flags or a config file. Compile validates it.
type Config struct {
	// ProxyImage is the proxy container's image.
	ProxyImage string `json:"proxyImage"`
	// ProxyImagePullPolicy is the proxy container's imagePullPolicy.
	ProxyImagePullPolicy corev1.PullPolicy `json:"proxyImagePullPolicy"`
	// DefaultIssuer signs Certificates of Pods without rbac-proxy.io/issuer, in the annotation's
	// syntax (Issuer/NAME, ClusterIssuer/NAME, KIND.GROUP/NAME). Empty: Pods must name one.
	DefaultIssuer string `json:"defaultIssuer"`
	// ProxyPort is the port the proxy listens on unless rbac-proxy.io/proxy-port says otherwise.
	ProxyPort int32 `json:"proxyPort"`
	// ProxyEndpointsPort serves the proxy's /healthz, /readyz and /metrics.
	ProxyEndpointsPort int32 `json:"proxyEndpointsPort"`
	// SidecarMode is native (init container with restartPolicy Always) or container.
	SidecarMode SidecarMode `json:"sidecarMode"`
	// Resources of the proxy container, as Kubernetes quantities; empty strings are left unset.
	Resources ResourceConfig `json:"resources"`
	// ProxyVerbosity is the proxy's -v; 0 renders no flag.
	ProxyVerbosity int `json:"proxyVerbosity"`
	// ClusterDomain is the suffix of the Certificate's fully qualified DNS name.
	ClusterDomain string `json:"clusterDomain"`
	// AllowedIssuers are the issuers a Pod may name in rbac-proxy.io/issuer besides the default
	// one, in the annotation's syntax; "Issuer/*" allows every Issuer of the Pod's own namespace.
	// Empty: only the default issuer.
	AllowedIssuers []string `json:"allowedIssuers"`
	// AllowedDNSSuffixes are domains outside the cluster under which rbac-proxy.io/dns-names may
	// ask for names (gpu.corp.example allows x.gpu.corp.example and *.gpu.corp.example). Names in
	// the Pod's own namespace are always allowed.
	AllowedDNSSuffixes []string `json:"allowedDNSSuffixes"`
	// ScrapersCASecret is NAMESPACE/NAME of the Secret of the CA of scrapers' client certificates
	// (a cert-manager CA Certificate's Secret; its tls.crt is the CA), trusted by
	// rbac-proxy.io/client-ca: scrapers. It must never be a CA that also signs workloads' serving
	// certificates. Empty: client-ca scrapers is refused.
	ScrapersCASecret string `json:"scrapersCASecret"`
}

// ResourceConfig holds the proxy container's requests and limits.
type ResourceConfig struct {
	CPURequest    string `json:"cpuRequest"`
	MemoryRequest string `json:"memoryRequest"`
	CPULimit      string `json:"cpuLimit"`
	MemoryLimit   string `json:"memoryLimit"`
}

// DefaultConfig returns the built-in defaults with the given proxy image.
func DefaultConfig(image string) Config {
	return Config{
		ProxyImage:           image,
		ProxyImagePullPolicy: corev1.PullIfNotPresent,
		ProxyPort:            DefaultProxyPort,
		ProxyEndpointsPort:   DefaultEndpointsPort,
		SidecarMode:          SidecarNative,
		Resources: ResourceConfig{
			CPURequest:    "10m",
			MemoryRequest: "32Mi",
			MemoryLimit:   "128Mi",
		},
		ClusterDomain: "cluster.local",
	}
}

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
	// ScrapersCA locates the scrapers' CA Secret; nil when none is configured.
	ScrapersCA *SecretRef
}

// SecretRef names a Secret in a namespace.
type SecretRef struct {
	Namespace string
	Name      string
}

func (r SecretRef) String() string { return r.Namespace + "/" + r.Name }

// Compile validates the Config and returns the Defaults; the error names every bad setting by
// its config-file key.
func (c Config) Compile() (*Defaults, error) {
	var errs []error
	bad := func(key, value, allowed string) {
		errs = append(errs, fmt.Errorf("%s=%q: allowed: %s", key, value, allowed))
	}
	d := &Defaults{
		Image:         c.ProxyImage,
		PullPolicy:    c.ProxyImagePullPolicy,
		ProxyPort:     c.ProxyPort,
		EndpointsPort: c.ProxyEndpointsPort,
		SidecarMode:   c.SidecarMode,
		Verbosity:     c.ProxyVerbosity,
		ClusterDomain: c.ClusterDomain,
	}
	if strings.TrimSpace(c.ProxyImage) == "" || strings.ContainsAny(c.ProxyImage, " \t\n") {
		bad("proxyImage", c.ProxyImage, "an image reference")
	}
	switch c.ProxyImagePullPolicy {
	case corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		bad("proxyImagePullPolicy", string(c.ProxyImagePullPolicy), "Always, IfNotPresent, Never")
	}
	if c.DefaultIssuer != "" {
		ref, err := parseIssuer(c.DefaultIssuer)
		if err != "" {
			bad("defaultIssuer", c.DefaultIssuer, issuerAllowed+" ("+err+")")
		}
		d.Issuer = ref
	}
	if c.ProxyPort < 1 || c.ProxyPort > 65535 {
		bad("proxyPort", fmt.Sprint(c.ProxyPort), "1-65535")
	}
	if c.ProxyEndpointsPort < 1 || c.ProxyEndpointsPort > 65535 || c.ProxyEndpointsPort == c.ProxyPort {
		bad("proxyEndpointsPort", fmt.Sprint(c.ProxyEndpointsPort), "1-65535, not the proxy port")
	}
	switch c.SidecarMode {
	case SidecarNative, SidecarContainer:
	default:
		bad("sidecarMode", string(c.SidecarMode), "native, container")
	}
	if c.ProxyVerbosity < 0 || c.ProxyVerbosity > 10 {
		bad("proxyVerbosity", fmt.Sprint(c.ProxyVerbosity), "0-10")
	}
	if msgs := dnsSubdomainErrors(c.ClusterDomain); len(msgs) > 0 {
		bad("clusterDomain", c.ClusterDomain, "a DNS domain ("+strings.Join(msgs, "; ")+")")
	}
	d.AllowedIssuers = IssuerAllowList{Default: d.Issuer}
	for i, v := range c.AllowedIssuers {
		key := fmt.Sprintf("allowedIssuers[%d]", i)
		if v == namespacedIssuers {
			d.AllowedIssuers.Namespaced = true
			continue
		}
		ref, problem := parseIssuer(v)
		if problem != "" {
			bad(key, v, issuerAllowed+" or "+namespacedIssuers+" ("+problem+")")
			continue
		}
		d.AllowedIssuers.Named = append(d.AllowedIssuers.Named, *ref)
	}
	for i, v := range c.AllowedDNSSuffixes {
		suffix := strings.TrimPrefix(v, ".")
		msgs := dnsSubdomainErrors(suffix)
		if len(msgs) == 0 && !strings.Contains(suffix, ".") {
			msgs = []string{"a top-level domain alone would allow every name under it"}
		}
		if len(msgs) == 0 && clusterSuffix(suffix, c.ClusterDomain) {
			msgs = []string{"names inside the cluster are allowed per namespace, never by suffix"}
		}
		if len(msgs) > 0 {
			bad(fmt.Sprintf("allowedDNSSuffixes[%d]", i), v, "a DNS domain outside the cluster, e.g. gpu.corp.example ("+strings.Join(msgs, "; ")+")")
			continue
		}
		d.DNSSuffixes = append(d.DNSSuffixes, suffix)
	}
	if c.ScrapersCASecret != "" {
		ns, name, ok := strings.Cut(c.ScrapersCASecret, "/")
		if !ok || len(dnsLabelErrors(ns)) > 0 || len(dnsSubdomainErrors(name)) > 0 {
			bad("scrapersCASecret", c.ScrapersCASecret, "NAMESPACE/NAME of the Secret of the scrapers' CA (its tls.crt)")
		} else {
			d.ScrapersCA = &SecretRef{Namespace: ns, Name: name}
			d.AllowedIssuers.ScrapersNamespace = ns
		}
	}
	res := corev1.ResourceRequirements{}
	quantity := func(key, value string, name corev1.ResourceName, list *corev1.ResourceList) {
		if value == "" {
			return
		}
		q, err := resource.ParseQuantity(value)
		if err != nil || q.Sign() <= 0 {
			bad(key, value, "a positive Kubernetes quantity, or empty for none")
			return
		}
		if *list == nil {
			*list = corev1.ResourceList{}
		}
		(*list)[name] = q
	}
	quantity("resources.cpuRequest", c.Resources.CPURequest, corev1.ResourceCPU, &res.Requests)
	quantity("resources.memoryRequest", c.Resources.MemoryRequest, corev1.ResourceMemory, &res.Requests)
	quantity("resources.cpuLimit", c.Resources.CPULimit, corev1.ResourceCPU, &res.Limits)
	quantity("resources.memoryLimit", c.Resources.MemoryLimit, corev1.ResourceMemory, &res.Limits)
	for name, limit := range res.Limits {
		if req, ok := res.Requests[name]; ok && req.Cmp(limit) > 0 {
			bad("resources", fmt.Sprintf("%s request %s > limit %s", name, req.String(), limit.String()), "requests not above limits")
		}
	}
	d.Resources = res
	if len(errs) > 0 {
		return nil, fmt.Errorf("invalid webhook configuration: %w", errors.Join(errs...))
	}
	return d, nil
}
