package webhook

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// DefaultProxyPort and DefaultEndpointsPort are the built-in ports of the proxy.
const (
	DefaultProxyPort     = 8443
	DefaultEndpointsPort = 8444
)

// Config is the webhook's settings: the defaults of every injected Pod and what a Pod may ask
// for. It is the one source of their three views, each read from a field's tags:
//
//   - json: the key in the --config file (and in Compile's errors);
//   - flag, help: the `serve` and `inject` flag and its help text (the field's value in
//     DefaultConfig is the flag's default);
//   - chart: the chart value that is this setting (values.yaml's default must equal
//     DefaultConfig's, values.schema.json's entry is generated); chartFrom instead names the
//     chart values the chart builds the setting from;
//   - enum, min, max, format: what values.schema.json allows, a subset of what Compile accepts
//     (tests in cmd/webhook check both).
//
// Compile validates a Config into Defaults.
type Config struct {
	ProxyImage           string            `json:"proxyImage" flag:"proxy-image" chartFrom:"proxy.image, image" help:"image of the injected proxy"`
	ProxyImagePullPolicy corev1.PullPolicy `json:"proxyImagePullPolicy" flag:"proxy-image-pull-policy" chart:"proxy.image.pullPolicy" enum:"Always,IfNotPresent,Never" help:"the proxy's imagePullPolicy: Always, IfNotPresent or Never"`
	// DefaultIssuer is in the rbac-proxy.io/issuer annotation's syntax.
	DefaultIssuer      string             `json:"defaultIssuer" flag:"default-issuer" chartFrom:"defaultIssuer, selfSignedCA" help:"cert-manager issuer for Pods without rbac-proxy.io/issuer: Issuer/NAME, ClusterIssuer/NAME or KIND.GROUP/NAME; empty: Pods must name one or a tls-secret"`
	ProxyPort          int32              `json:"proxyPort" flag:"proxy-port" chart:"proxy.port" min:"1" max:"65535" help:"port the proxy listens on, unless rbac-proxy.io/proxy-port says otherwise"`
	ProxyEndpointsPort int32              `json:"proxyEndpointsPort" flag:"proxy-endpoints-port" chart:"proxy.endpointsPort" min:"1" max:"65535" help:"port of the proxy's /healthz, /readyz and /metrics, used by its probes; not the proxy port"`
	SidecarMode        inject.SidecarMode `json:"sidecarMode" flag:"sidecar-mode" chart:"proxy.sidecarMode" enum:"native,container" help:"where the proxy goes: native (an init container with restartPolicy Always) or container (a regular container)"`
	Resources          ResourceConfig     `json:"resources"`
	ProxyVerbosity     int                `json:"proxyVerbosity" flag:"proxy-verbosity" chart:"proxy.verbosity" min:"0" max:"10" help:"the proxy's -v, 0-10; 0 renders no flag"`
	// DefaultTokenVerification is in the rbac-proxy.io/token-verification annotation's syntax.
	DefaultTokenVerification config.SATokenVerification `json:"defaultTokenVerification" flag:"default-token-verification" chart:"proxy.tokenVerification" enum:"review,local" help:"how the proxy verifies ServiceAccount tokens, unless rbac-proxy.io/token-verification says otherwise: review (a TokenReview each, cached) or local (with the keys the API server publishes; no TokenReview; audience rbac-proxy:NAMESPACE unless rbac-proxy.io/token-audiences names the proxy's own)"`
	ClusterDomain            string                     `json:"clusterDomain" flag:"cluster-domain" chart:"clusterDomain" format:"dnsDomain" help:"cluster DNS domain for the Certificates' fully qualified names"`
	// AllowedIssuers: "Issuer/*" allows every Issuer of the Pod's own namespace.
	AllowedIssuers []string `json:"allowedIssuers" flag:"allowed-issuers" chart:"allowedIssuers" format:"allowedIssuer" help:"issuers a Pod may name in rbac-proxy.io/issuer besides the default issuer: Issuer/NAME, ClusterIssuer/NAME or KIND.GROUP/NAME by exact name, or Issuer/* for any Issuer of the Pod's own namespace; empty: only the default issuer"`
	// AllowedDNSSuffixes: gpu.corp.example allows x.gpu.corp.example and *.gpu.corp.example.
	AllowedDNSSuffixes []string `json:"allowedDNSSuffixes" flag:"allowed-dns-suffixes" chart:"allowedDNSSuffixes" format:"dnsSuffix" help:"domains outside the cluster under which rbac-proxy.io/dns-names may ask for names, e.g. gpu.corp.example; names inside the Pod's namespace are always allowed, other cluster names never"`
	// ScrapersCASecret is a cert-manager CA Certificate's Secret (its tls.crt is the CA). It
	// must never be a CA that also signs workloads' serving certificates.
	ScrapersCASecret string `json:"scrapersCASecret" flag:"scrapers-ca-secret" chartFrom:"scrapersCA" help:"NAMESPACE/NAME of the Secret of the CA that signs scrapers' client certificates (its tls.crt is the CA certificate, as cert-manager writes it for an isCA Certificate); rbac-proxy.io/client-ca: scrapers trusts it and the injector copies it to the Pod's namespace; it must sign no serving certificate; empty: client-ca scrapers is refused"`
}

// ResourceConfig holds the proxy container's requests and limits, as Kubernetes quantities;
// empty strings are left unset.
type ResourceConfig struct {
	CPURequest    string `json:"cpuRequest" flag:"proxy-cpu-request" chart:"proxy.resources.requests.cpu" format:"quantity" help:"CPU request of the proxy; empty for none"`
	MemoryRequest string `json:"memoryRequest" flag:"proxy-memory-request" chart:"proxy.resources.requests.memory" format:"quantity" help:"memory request of the proxy; empty for none"`
	CPULimit      string `json:"cpuLimit" flag:"proxy-cpu-limit" chart:"proxy.resources.limits.cpu" format:"quantity" help:"CPU limit of the proxy; empty for none"`
	MemoryLimit   string `json:"memoryLimit" flag:"proxy-memory-limit" chart:"proxy.resources.limits.memory" format:"quantity" help:"memory limit of the proxy; empty for none"`
}

// DefaultConfig returns the built-in defaults with the given proxy image.
func DefaultConfig(image string) Config {
	return Config{
		ProxyImage:           image,
		ProxyImagePullPolicy: corev1.PullIfNotPresent,
		ProxyPort:            DefaultProxyPort,
		ProxyEndpointsPort:   DefaultEndpointsPort,
		SidecarMode:          inject.SidecarNative,
		Resources: ResourceConfig{
			CPURequest:    "10m",
			MemoryRequest: "32Mi",
			MemoryLimit:   "128Mi",
		},
		ClusterDomain:            "cluster.local",
		DefaultTokenVerification: config.SATokensReview,
	}
}

// Compile validates the Config and returns the Defaults; the error lists every bad setting at
// once, each by its config-file key.
func (c Config) Compile() (*inject.Defaults, error) {
	var errs field.ErrorList
	d := &inject.Defaults{
		Image:             c.ProxyImage,
		PullPolicy:        c.ProxyImagePullPolicy,
		ProxyPort:         c.ProxyPort,
		EndpointsPort:     c.ProxyEndpointsPort,
		SidecarMode:       c.SidecarMode,
		Verbosity:         c.ProxyVerbosity,
		ClusterDomain:     c.ClusterDomain,
		TokenVerification: c.DefaultTokenVerification,
	}
	if strings.TrimSpace(c.ProxyImage) == "" {
		errs = append(errs, field.Required(field.NewPath("proxyImage"), "an image reference"))
	} else if strings.ContainsAny(c.ProxyImage, " \t\n") {
		errs = append(errs, field.Invalid(field.NewPath("proxyImage"), c.ProxyImage, "an image reference has no white space"))
	}
	if pulls := []corev1.PullPolicy{corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever}; !slices.Contains(pulls, c.ProxyImagePullPolicy) {
		errs = append(errs, field.NotSupported(field.NewPath("proxyImagePullPolicy"), c.ProxyImagePullPolicy, pulls))
	}
	if c.DefaultIssuer != "" {
		ref, problem := inject.ParseIssuer(c.DefaultIssuer)
		if problem != "" {
			errs = append(errs, field.Invalid(field.NewPath("defaultIssuer"), c.DefaultIssuer, problem+"; allowed: "+inject.IssuerSyntax))
		}
		d.Issuer = ref
	}
	for _, msg := range validation.IsValidPortNum(int(c.ProxyPort)) {
		errs = append(errs, field.Invalid(field.NewPath("proxyPort"), c.ProxyPort, msg))
	}
	for _, msg := range validation.IsValidPortNum(int(c.ProxyEndpointsPort)) {
		errs = append(errs, field.Invalid(field.NewPath("proxyEndpointsPort"), c.ProxyEndpointsPort, msg))
	}
	if c.ProxyEndpointsPort == c.ProxyPort {
		errs = append(errs, field.Invalid(field.NewPath("proxyEndpointsPort"), c.ProxyEndpointsPort, "must differ from proxyPort"))
	}
	if modes := []inject.SidecarMode{inject.SidecarNative, inject.SidecarContainer}; !slices.Contains(modes, c.SidecarMode) {
		errs = append(errs, field.NotSupported(field.NewPath("sidecarMode"), c.SidecarMode, modes))
	}
	if modes := inject.TokenVerifications(); !slices.Contains(modes, c.DefaultTokenVerification) {
		errs = append(errs, field.NotSupported(field.NewPath("defaultTokenVerification"), c.DefaultTokenVerification, modes))
	}
	if c.ProxyVerbosity < 0 || c.ProxyVerbosity > 10 {
		errs = append(errs, field.Invalid(field.NewPath("proxyVerbosity"), c.ProxyVerbosity, validation.InclusiveRangeError(0, 10)))
	}
	if msgs := validation.IsDNS1123Subdomain(c.ClusterDomain); len(msgs) > 0 {
		errs = append(errs, field.Invalid(field.NewPath("clusterDomain"), c.ClusterDomain, "a DNS domain: "+strings.Join(msgs, "; ")))
	}
	d.AllowedIssuers = inject.IssuerAllowList{Default: d.Issuer}
	for i, v := range c.AllowedIssuers {
		if v == inject.NamespacedIssuers {
			d.AllowedIssuers.Namespaced = true
			continue
		}
		ref, problem := inject.ParseIssuer(v)
		if problem != "" {
			errs = append(errs, field.Invalid(field.NewPath("allowedIssuers").Index(i), v, problem+"; allowed: "+inject.NamespacedIssuers+", or "+inject.IssuerSyntax))
			continue
		}
		d.AllowedIssuers.Named = append(d.AllowedIssuers.Named, *ref)
	}
	for i, v := range c.AllowedDNSSuffixes {
		suffix := strings.TrimPrefix(v, ".")
		msgs := validation.IsDNS1123Subdomain(suffix)
		if len(msgs) == 0 && !strings.Contains(suffix, ".") {
			msgs = []string{"a top-level domain alone would allow every name under it"}
		}
		if len(msgs) == 0 && inject.ClusterSuffix(suffix, c.ClusterDomain) {
			msgs = []string{"names inside the cluster are allowed per namespace, never by suffix"}
		}
		if len(msgs) > 0 {
			errs = append(errs, field.Invalid(field.NewPath("allowedDNSSuffixes").Index(i), v,
				strings.Join(msgs, "; ")+"; allowed: a DNS domain outside the cluster, e.g. gpu.corp.example"))
			continue
		}
		d.DNSSuffixes = append(d.DNSSuffixes, suffix)
	}
	if c.ScrapersCASecret != "" {
		ns, name, ok := strings.Cut(c.ScrapersCASecret, "/")
		if !ok || len(validation.IsDNS1123Label(ns)) > 0 || len(validation.IsDNS1123Subdomain(name)) > 0 {
			errs = append(errs, field.Invalid(field.NewPath("scrapersCASecret"), c.ScrapersCASecret, "allowed: NAMESPACE/NAME of the Secret of the scrapers' CA (its tls.crt)"))
		} else {
			d.ScrapersCA = &inject.SecretRef{Namespace: ns, Name: name}
			d.AllowedIssuers.ScrapersNamespace = ns
		}
	}
	var resErrs field.ErrorList
	d.Resources, resErrs = c.Resources.compile(field.NewPath("resources"))
	errs = append(errs, resErrs...)
	if len(errs) > 0 {
		return nil, fmt.Errorf("invalid webhook configuration: %w", errs.ToAggregate())
	}
	return d, nil
}

// compile parses the quantities into the container's requirements.
func (r ResourceConfig) compile(path *field.Path) (corev1.ResourceRequirements, field.ErrorList) {
	var errs field.ErrorList
	var res corev1.ResourceRequirements
	for _, q := range []struct {
		key, value string
		name       corev1.ResourceName
		list       *corev1.ResourceList
	}{
		{"cpuRequest", r.CPURequest, corev1.ResourceCPU, &res.Requests},
		{"memoryRequest", r.MemoryRequest, corev1.ResourceMemory, &res.Requests},
		{"cpuLimit", r.CPULimit, corev1.ResourceCPU, &res.Limits},
		{"memoryLimit", r.MemoryLimit, corev1.ResourceMemory, &res.Limits},
	} {
		if q.value == "" {
			continue
		}
		v, err := resource.ParseQuantity(q.value)
		if err != nil || v.Sign() <= 0 {
			errs = append(errs, field.Invalid(path.Child(q.key), q.value, "allowed: a positive Kubernetes quantity, or empty for none"))
			continue
		}
		if *q.list == nil {
			*q.list = corev1.ResourceList{}
		}
		(*q.list)[q.name] = v
	}
	for _, p := range []struct {
		name              corev1.ResourceName
		request, limitKey string
	}{{corev1.ResourceCPU, "cpuRequest", "cpuLimit"}, {corev1.ResourceMemory, "memoryRequest", "memoryLimit"}} {
		req, hasReq := res.Requests[p.name]
		limit, hasLimit := res.Limits[p.name]
		if hasReq && hasLimit && req.Cmp(limit) > 0 {
			errs = append(errs, field.Invalid(path.Child(p.request), req.String(), fmt.Sprintf("must not be above %s (%s)", path.Child(p.limitKey), limit.String())))
		}
	}
	return res, errs
}
