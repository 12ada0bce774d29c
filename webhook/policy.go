package webhook

import (
	"sort"
	"strconv"
	"strings"
	"unicode"

	corev1 "k8s.io/api/core/v1"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
)

// AuthzMode is how the proxy authorizes a request.
type AuthzMode string

const (
	// AuthzSAR asks the API server with a SubjectAccessReview per (cached) request.
	AuthzSAR AuthzMode = "sar"
	// AuthzStatic allows only the listed users and groups.
	AuthzStatic AuthzMode = "static"
)

// Upstream schemes.
const (
	SchemeHTTP  = "http"
	SchemeHTTPS = "https"
)

// ResourceAttributes make the proxy authorize against a resource instead of the request path.
type ResourceAttributes struct {
	Namespace   string
	APIGroup    string
	APIVersion  string
	Resource    string
	Subresource string
	Name        string
}

// resourceAttributeKeys are the keys of rbac-proxy.io/resource-attributes in flag order.
func resourceAttributeKeys(ra *ResourceAttributes) []struct {
	key   string
	value *string
} {
	return []struct {
		key   string
		value *string
	}{
		{"namespace", &ra.Namespace}, {"apigroup", &ra.APIGroup}, {"apiversion", &ra.APIVersion},
		{"resource", &ra.Resource}, {"subresource", &ra.Subresource}, {"name", &ra.Name},
	}
}

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
	// Probes are the app's probes the proxy passes through on its endpoints port.
	Probes []config.ProbePassthrough
	// UpstreamScheme is http or https.
	UpstreamScheme     string
	Authz              AuthzMode
	AllowedUsers       []string
	AllowedGroups      []string
	ResourceAttributes *ResourceAttributes
	ClientCA           *ClientCA
	TokenAudiences     []string
	AllowPaths         []string
	IgnorePaths        []string
	TLS                TLSPolicy
	Resources          corev1.ResourceRequirements
	Verbosity          int
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
		Authz:          AuthzSAR,
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
		nameTarget(&pod.Spec, &target)
		p.Target = target
	}
	parseMode(&pod.Spec, ann, p, targetOK, errs)
	checkRedirect(&pod.Spec, in, p, errs)
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
		p.Probes = collectProbes(&pod.Spec, p, errs)
	}

	if v, ok := ann[AnnotationUpstreamScheme]; ok {
		switch v {
		case SchemeHTTP, SchemeHTTPS:
			p.UpstreamScheme = v
		default:
			errs.add(AnnotationUpstreamScheme, v, "unknown scheme", "http, https")
		}
	}

	parseAuthz(ann, p, errs)

	if v, ok := ann[AnnotationClientCA]; ok {
		ca, problem := parseClientCA(v, d)
		if problem != "" {
			errs.add(AnnotationClientCA, v, problem, clientCAAllowed)
		}
		p.ClientCA = ca
	}
	if v, ok := ann[AnnotationTokenAudiences]; ok {
		p.TokenAudiences = parseNames(AnnotationTokenAudiences, v, "comma-separated audiences", errs)
	}
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
		errs.add(AnnotationClientCA, ann[AnnotationClientCA], "a serving certificate's Secret (the injector's are named "+servingSecretPrefix+"*): its CA signs serving certificates for anyone allowed one, so anyone could pose as a scraper", clientCAAllowed)
	}
	if p.TLS.Certificate != nil || p.ClientCA != nil && p.ClientCA.Source == ClientCAScrapers {
		// The certificate controller acts only for Pods it can verify: one it would refuse gets no
		// Certificate or CA ConfigMap, and its proxy would never start.
		if problem := checkVerifiable(pod, in.Workload); problem != "" {
			errs.addUnset(AnnotationTLSSecret, problem+", so the injector would make no Certificate or CA ConfigMap and the proxy would never start", "an existing Secret in "+AnnotationTLSSecret+" (and no client-ca scrapers), or a Pod whose controller is "+verifiableControllers)
		}
	}

	if err := errs.err(); err != nil {
		return nil, err
	}
	// Last, and only on a policy without errors: a partial one renders flags the proxy would
	// refuse for reasons already reported.
	checkProxyArgs(p, ann, errs)
	if err := errs.err(); err != nil {
		return nil, err
	}
	return p, nil
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
	reserved := map[string]bool{volumeTLS: true, volumeClientCA: true, volumeToken: true}
	for _, v := range spec.Volumes {
		if reserved[v.Name] {
			errs.add(AnnotationInject, "true", "the Pod already has a volume named "+v.Name+" but no "+ContainerName+" container", "a Pod without volumes named "+volumeTLS+", "+volumeClientCA+", "+volumeToken)
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
		errs.add(annotation, v, "not a port number", "a port number 1-65535 the Pod does not use")
		return 0, true
	}
	return int32(n), true
}

func parseAuthz(ann map[string]string, p *Policy, errs *problems) {
	mode, modeSet := ann[AnnotationAuthz]
	if modeSet {
		switch AuthzMode(mode) {
		case AuthzSAR, AuthzStatic:
			p.Authz = AuthzMode(mode)
		default:
			errs.add(AnnotationAuthz, mode, "unknown mode", "sar, static")
			return
		}
	}
	users, hasUsers := ann[AnnotationAllowedClients]
	groups, hasGroups := ann[AnnotationAllowedGroups]
	attrs, hasAttrs := ann[AnnotationResourceAttributes]
	if hasUsers {
		p.AllowedUsers = parseNames(AnnotationAllowedClients, users, "comma-separated user names or certificate CNs", errs)
	}
	if hasGroups {
		p.AllowedGroups = parseNames(AnnotationAllowedGroups, groups, "comma-separated group names", errs)
	}
	switch p.Authz {
	case AuthzStatic:
		if !hasUsers && !hasGroups {
			errs.addUnset(AnnotationAllowedClients, AnnotationAuthz+"=static needs allowed clients or groups", "comma-separated user names or certificate CNs (or set "+AnnotationAllowedGroups+")")
		}
		if hasAttrs {
			errs.add(AnnotationResourceAttributes, attrs, "only used with "+AnnotationAuthz+"=sar", "unset with "+AnnotationAuthz+"=static")
		}
	case AuthzSAR:
		if hasUsers {
			errs.add(AnnotationAllowedClients, users, "only used with "+AnnotationAuthz+"=static", "unset, or set "+AnnotationAuthz+"=static")
		}
		if hasGroups {
			errs.add(AnnotationAllowedGroups, groups, "only used with "+AnnotationAuthz+"=static", "unset, or set "+AnnotationAuthz+"=static")
		}
		if hasAttrs {
			p.ResourceAttributes = parseResourceAttributes(attrs, errs)
		}
	}
}

const resourceAttributesAllowed = "comma-separated key=value with keys namespace, apigroup, apiversion, resource, subresource, name; resource is required"

func parseResourceAttributes(v string, errs *problems) *ResourceAttributes {
	items, ok := splitList(v)
	bad := false
	if !ok {
		errs.add(AnnotationResourceAttributes, v, "empty item", resourceAttributesAllowed)
		bad = true
	}
	ra := &ResourceAttributes{}
	keys := resourceAttributeKeys(ra)
	seen := map[string]bool{}
	for _, item := range items {
		key, value, ok := strings.Cut(item, "=")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if !ok || value == "" || !isPlainValue(value) {
			errs.add(AnnotationResourceAttributes, v, "malformed item "+strconv.Quote(item), resourceAttributesAllowed)
			bad = true
			continue
		}
		if seen[key] {
			errs.add(AnnotationResourceAttributes, v, "duplicate key "+key, resourceAttributesAllowed)
			bad = true
			continue
		}
		seen[key] = true
		found := false
		for _, k := range keys {
			if k.key == key {
				*k.value, found = value, true
			}
		}
		if !found {
			errs.add(AnnotationResourceAttributes, v, "unknown key "+strconv.Quote(key), resourceAttributesAllowed)
			bad = true
		}
	}
	if !bad && ra.Resource == "" {
		errs.add(AnnotationResourceAttributes, v, "no resource", resourceAttributesAllowed)
		bad = true
	}
	if bad {
		return nil
	}
	return ra
}

// isPlainValue refuses characters that would change the meaning of a rendered flag.
func isPlainValue(s string) bool {
	for _, r := range s {
		if r == '=' || r == ',' || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

func parseNames(annotation, v, allowed string, errs *problems) []string {
	items, ok := splitList(v)
	if !ok {
		errs.add(annotation, v, "empty item", allowed)
	}
	for _, item := range items {
		for _, r := range item {
			if !unicode.IsPrint(r) {
				errs.add(annotation, v, "non-printable character in "+strconv.Quote(item), allowed)
				return nil
			}
		}
	}
	return items
}

func parsePaths(annotation, v string, errs *problems) []string {
	allowed := "comma-separated paths starting with /, * globs allowed"
	items, ok := splitList(v)
	if !ok {
		errs.add(annotation, v, "empty item", allowed)
	}
	for _, item := range items {
		if !strings.HasPrefix(item, "/") || !isPlainValue(item) {
			errs.add(annotation, v, "bad path "+strconv.Quote(item), allowed)
			return nil
		}
	}
	return items
}
