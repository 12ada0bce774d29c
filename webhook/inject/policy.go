package inject

import (
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
)

// Upstream schemes.
const (
	SchemeHTTP  = "http"
	SchemeHTTPS = "https"
)

// Policy is everything the render needs, validated: the webhook's defaults merged with the Pod's
// annotations and resolved against the Pod's ports.
type Policy struct {
	Image         string
	PullPolicy    corev1.PullPolicy
	SidecarMode   SidecarMode
	ProxyPort     int32
	EndpointsPort int32
	Target        PortTarget
	// Mode is how the proxy gets in front of the protected port.
	Mode PortMode
	// Preset names the preset that moves the app (takeover), empty for upstream-listen.
	Preset string
	// Listen moves the app to 127.0.0.1:UpstreamPort (takeover).
	Listen []ListenSetting
	// UpstreamPort is where the app listens: the protected port, or the internal port (takeover).
	UpstreamPort int32
	// Probes are the app's probes the proxy passes through on its endpoints port; ProbeRewrites
	// point the app's probes of the protected port at them.
	Probes        []config.ProbePassthrough
	ProbeRewrites []ProbeRewrite
	// UpstreamScheme is http or https.
	UpstreamScheme     string
	Authz              config.AuthzMode
	AllowedUsers       []string
	AllowedGroups      []string
	ResourceAttributes *config.ResourceAttributes
	// Tenancy and TenancyNamespaceLabels are what a caller not allowed the endpoint may see.
	Tenancy                config.TenancyMode
	TenancyNamespaceLabels []string
	ClientCA               *ClientCA
	TokenAudiences         []string
	// TokenVerification is how the proxy verifies ServiceAccount tokens: review or local.
	TokenVerification config.SATokenVerification
	AllowPaths        []string
	IgnorePaths       []string
	TLS               TLSPolicy
	Resources         corev1.ResourceRequirements
	Verbosity         int
	// Args is the proxy's command line: config.Args of ProxyConfig, which the proxy validated.
	Args []string
}

// PolicyInput is what a policy is built from besides the Pod.
type PolicyInput struct {
	Defaults *Defaults
	// Namespace is the Pod's namespace (the admission request's, which the Pod may omit).
	Namespace string
	// Workload owns the Certificate; its name derives the Certificate and Secret names.
	Workload Workload
	// NamespaceLabels are the Namespace's labels, nil when unknown (inject -f): redirect mode is
	// refused where the enforced Pod Security level forbids NET_ADMIN.
	NamespaceLabels map[string]string
}

// NewPolicy validates the Pod's annotations against the defaults and the Pod. On error it returns
// a *PolicyError listing every bad annotation.
func NewPolicy(pod *corev1.Pod, in PolicyInput) (*Policy, error) {
	d := in.Defaults
	ann := pod.Annotations
	errs := &problems{}
	p := &Policy{
		Image:          d.Image,
		PullPolicy:     d.PullPolicy,
		SidecarMode:    d.SidecarMode,
		UpstreamScheme: SchemeHTTP,
		Authz:          config.AuthzSAR,
		Resources:      *d.Resources.DeepCopy(),
		Verbosity:      d.Verbosity,
	}

	checkUnknown(ann, errs)
	checkReservedNames(&pod.Spec, errs)
	if pod.Spec.OS != nil && pod.Spec.OS.Name != corev1.Linux {
		errs.add(AnnotationInject, "true", "the proxy runs on Linux and the Pod's spec.os.name is "+string(pod.Spec.OS.Name), "a Linux Pod, or "+AnnotationInject+": \"false\"")
	}

	target, targetOK := resolveTarget(&pod.Spec, ann, errs)
	if targetOK {
		checkNameUnique(&pod.Spec, target, errs)
		p.Target = target
	}
	parseMode(&pod.Spec, ann, p, targetOK, errs)
	if targetOK {
		nameTarget(&pod.Spec, &p.Target, p.Mode)
	}
	checkRedirect(&pod.Spec, in, p.Mode, errs)
	proxyPort, proxySet := parsePort(ann, AnnotationProxyPort, d.ProxyPort, errs)
	endpointsPort, endpointsSet := parsePort(ann, AnnotationEndpointsPort, d.EndpointsPort, errs)
	if p.Mode == PortModeTakeover {
		proxyPort = p.Target.Number
	}
	p.ProxyPort, p.EndpointsPort = proxyPort, endpointsPort
	if proxyPort != 0 && p.Mode != PortModeTakeover {
		taken := map[int32]string{}
		if targetOK {
			taken[target.Number] = "the protected port (" + AnnotationPort + ")"
		}
		checkFreePort(&pod.Spec, AnnotationProxyPort, proxyPort, !proxySet, taken, errs)
	}
	if endpointsPort != 0 {
		taken := map[int32]string{}
		if targetOK {
			taken[target.Number] = "the protected port (" + AnnotationPort + ")"
		}
		if proxyPort != 0 {
			taken[proxyPort] = "the proxy port (" + AnnotationProxyPort + ")"
		}
		checkFreePort(&pod.Spec, AnnotationEndpointsPort, endpointsPort, !endpointsSet, taken, errs)
	}
	if targetOK {
		chooseUpstreamPort(&pod.Spec, ann, p, errs)
		p.Probes, p.ProbeRewrites = collectProbes(&pod.Spec, p, errs)
	}

	if v, ok := ann[AnnotationUpstreamScheme]; ok {
		switch v {
		case SchemeHTTP, SchemeHTTPS:
			p.UpstreamScheme = v
		default:
			errs.add(AnnotationUpstreamScheme, v, "unknown scheme", AllowedOf(AnnotationUpstreamScheme))
		}
	}

	parseAuthz(ann, p, errs)
	parseTenancy(ann, p, errs)

	if v, ok := ann[AnnotationClientCA]; ok {
		ca, problem := ParseClientCA(v, d)
		if problem != "" {
			errs.add(AnnotationClientCA, v, problem, AllowedOf(AnnotationClientCA))
		}
		p.ClientCA = ca
	}
	if v, ok := ann[AnnotationTokenAudiences]; ok {
		p.TokenAudiences = parseNames(AnnotationTokenAudiences, v, errs)
	}
	parseTokenVerification(ann, d, in.Namespace, p, errs)
	allowV, hasAllow := ann[AnnotationAllowPaths]
	ignoreV, hasIgnore := ann[AnnotationIgnorePaths]
	if hasAllow {
		p.AllowPaths = parsePaths(AnnotationAllowPaths, allowV, errs)
	}
	if hasIgnore {
		p.IgnorePaths = parsePaths(AnnotationIgnorePaths, ignoreV, errs)
	}
	if hasAllow && hasIgnore {
		errs.add(AnnotationIgnorePaths, ignoreV, "conflicts with "+AnnotationAllowPaths, "only one of "+AnnotationAllowPaths+" and "+AnnotationIgnorePaths)
	}

	p.TLS = parseTLS(ann, in, errs)
	if ca := p.ClientCA; ca != nil && ca.Source == ClientCASecret && (ca.Name == p.TLS.SecretName || strings.HasPrefix(ca.Name, servingSecretPrefix)) {
		// client-ca issuer under another name: the ca.crt of a serving Secret is the CA that
		// signs every workload's serving certificate.
		errs.add(AnnotationClientCA, ann[AnnotationClientCA], "a serving certificate's Secret (the injector's are named "+servingSecretPrefix+"*): its CA signs serving certificates for anyone allowed one, so anyone could pose as a scraper", AllowedOf(AnnotationClientCA))
	}

	if err := errs.err(); err != nil {
		return nil, err
	}
	// Last, and only on a policy without errors: a partial one makes a configuration the proxy
	// would refuse for reasons already reported.
	p.Args = proxyArgs(p, errs)
	if err := errs.err(); err != nil {
		return nil, err
	}
	return p, nil
}

// WaitsOnController reports whether the Pod's proxy starts only once the injector's certificate
// controller has made something for it: the Certificate that fills its serving Secret, or the
// scrapers' CA ConfigMap it trusts.
func (p *Policy) WaitsOnController() bool {
	return p.TLS.Certificate != nil || p.ClientCA != nil && p.ClientCA.Source == ClientCAScrapers
}

// checkUnknown refuses rbac-proxy.io/ annotations that are not documented: a misspelt security
// setting must not be silently ignored.
func checkUnknown(ann map[string]string, errs *problems) {
	var unknown []string
	for k := range ann {
		if strings.HasPrefix(k, Prefix) && !knownAnnotation(k) {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	if len(unknown) == 0 {
		return
	}
	var names []string
	for _, a := range Annotations() {
		names = append(names, a.Name)
	}
	for _, k := range unknown {
		errs.add(k, ann[k], "unknown annotation", strings.Join(names, ", "))
	}
}

// checkReservedNames refuses Pods that already use the names the render adds.
func checkReservedNames(spec *corev1.PodSpec, errs *problems) {
	reserved := map[string]bool{TLSVolume: true, volumeClientCA: true, volumeToken: true}
	for _, v := range spec.Volumes {
		if reserved[v.Name] {
			errs.add(AnnotationInject, "true", "the Pod already has a volume named "+v.Name+" but no "+ContainerName+" container", "a Pod without volumes named "+TLSVolume+", "+volumeClientCA+", "+volumeToken)
		}
	}
}

func parsePort(ann map[string]string, annotation string, def int32, errs *problems) (port int32, set bool) {
	v, ok := ann[annotation]
	if !ok {
		return def, false
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 {
		errs.add(annotation, v, "not a port number", AllowedOf(annotation))
		return 0, true
	}
	return int32(n), true
}
