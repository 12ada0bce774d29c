package webhook

import (
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
)

// internalPortOffset: in takeover mode the app moves to its port + this, by default.
const internalPortOffset = 10000

// parseMode reads rbac-proxy.io/port-mode, preset and upstream-listen into the policy.
func parseMode(spec *corev1.PodSpec, ann map[string]string, p *Policy, targetOK bool, errs *problems) {
	modeV, modeSet := ann[AnnotationPortMode]
	presetV, presetSet := ann[AnnotationPreset]
	listenV, listenSet := ann[AnnotationUpstreamListen]

	var container *corev1.Container
	if targetOK && p.Target.Container != "" {
		for i := range spec.Containers {
			if spec.Containers[i].Name == p.Target.Container {
				container = &spec.Containers[i]
			}
		}
	}
	if presetSet {
		if pr := findPreset(presetV); pr != nil {
			p.Preset, p.Listen = pr.Name, pr.Listen
		} else {
			errs.add(AnnotationPreset, presetV, "unknown preset", presetNames())
		}
	}
	if listenSet {
		p.Listen = parseUpstreamListen(listenV, errs)
		if presetSet {
			errs.add(AnnotationUpstreamListen, listenV, "conflicts with "+AnnotationPreset, "only one of "+AnnotationPreset+" and "+AnnotationUpstreamListen)
		}
	}
	if !presetSet && !listenSet && container != nil {
		if pr := detectPreset(container); pr != nil {
			p.Preset, p.Listen = pr.Name, pr.Listen
		}
	}

	p.Mode = PortModeRename
	if p.Preset != "" || listenSet {
		p.Mode = PortModeTakeover
	}
	if modeSet {
		switch PortMode(modeV) {
		case PortModeRename, PortModeTakeover, PortModeRedirect:
			p.Mode = PortMode(modeV)
		default:
			errs.add(AnnotationPortMode, modeV, "unknown mode", "rename, takeover, redirect")
			return
		}
	}
	switch p.Mode {
	case PortModeRename, PortModeRedirect:
		p.Preset, p.Listen = "", nil
		if presetSet {
			errs.add(AnnotationPreset, presetV, "only used with "+AnnotationPortMode+"=takeover", "unset, or "+AnnotationPortMode+"=takeover")
		}
		if listenSet {
			errs.add(AnnotationUpstreamListen, listenV, "only used with "+AnnotationPortMode+"=takeover", "unset, or "+AnnotationPortMode+"=takeover")
		}
		if v, ok := ann[AnnotationUpstreamPort]; ok {
			errs.add(AnnotationUpstreamPort, v, "only used with "+AnnotationPortMode+"=takeover", "unset, or "+AnnotationPortMode+"=takeover")
		}
	case PortModeTakeover:
		if v, ok := ann[AnnotationProxyPort]; ok {
			errs.add(AnnotationProxyPort, v, "the proxy takes the protected port's own number with "+AnnotationPortMode+"=takeover", "unset with "+AnnotationPortMode+"=takeover")
		}
		if !targetOK {
			return
		}
		if container == nil {
			errs.add(AnnotationPortMode, string(p.Mode), fmt.Sprintf("port %d is not declared by an app container, so there is no app to move", p.Target.Number), "rename, or declare the port in the app container")
			return
		}
		if p.Listen == nil && !listenSet && !presetSet {
			errs.add(AnnotationPortMode, string(p.Mode), fmt.Sprintf("no preset recognizes container %s (image %s), so the webhook does not know how to move it to 127.0.0.1", container.Name, container.Image), "rename, or name a preset with "+AnnotationPreset+" ("+presetNames()+") or set "+AnnotationUpstreamListen)
		}
	}
}

// chooseUpstreamPort sets the app's internal port in takeover mode: rbac-proxy.io/upstream-port,
// or the protected port + 10000 (the first free one from there).
func chooseUpstreamPort(spec *corev1.PodSpec, ann map[string]string, p *Policy, errs *problems) {
	p.UpstreamPort = p.Target.Number
	if p.Mode != PortModeTakeover || p.Target.Number == 0 {
		return
	}
	taken := map[int32]string{p.Target.Number: "the protected port (" + AnnotationPort + ")"}
	if p.EndpointsPort != 0 {
		taken[p.EndpointsPort] = "the proxy's endpoints port (" + AnnotationEndpointsPort + ")"
	}
	if v, ok := ann[AnnotationUpstreamPort]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 65535 {
			errs.add(AnnotationUpstreamPort, v, "not a port number", "a port number 1-65535 the Pod does not use")
			return
		}
		p.UpstreamPort = int32(n)
		checkFreePort(spec, AnnotationUpstreamPort, p.UpstreamPort, false, taken, errs)
		return
	}
	declared := map[int32]bool{}
	for _, d := range declaredPorts(spec) {
		declared[d.port.ContainerPort] = true
	}
	start := p.Target.Number + internalPortOffset
	if start > 65535 {
		start = 1024
	}
	for n := start; n <= 65535; n++ {
		if _, t := taken[n]; !t && !declared[n] {
			p.UpstreamPort = n
			return
		}
	}
	errs.addUnset(AnnotationUpstreamPort, "no free port for the app", "a port number 1-65535 the Pod does not use")
}

// probeRef says whether a probe or hook port refers to the protected port, as seen from
// container c: by number in any container, by name only in the container that declares it.
func probeRef(port intstr.IntOrString, c *corev1.Container, t PortTarget) bool {
	if port.Type == intstr.Int {
		return port.IntVal == t.Number
	}
	return t.Name != "" && port.StrVal == t.Name && c.Name == t.Container
}

type probeSlot struct {
	what  string
	probe *corev1.Probe
}

func containerProbes(c *corev1.Container) []probeSlot {
	return []probeSlot{{"livenessProbe", c.LivenessProbe}, {"readinessProbe", c.ReadinessProbe}, {"startupProbe", c.StartupProbe}}
}

// passthroughOf is the pass-through for an httpGet probe of the protected port.
func passthroughOf(h *corev1.HTTPGetAction, upstreamPort int32) (config.ProbePassthrough, error) {
	scheme := "http"
	if h.Scheme == corev1.URISchemeHTTPS {
		scheme = "https"
	}
	path := h.Path
	if path == "" {
		path = "/"
	}
	return config.ParseProbePassthrough(fmt.Sprintf("%s:GET:%d:%s", scheme, upstreamPort, path))
}

// collectProbes validates the app's probes against the mode and returns the pass-throughs the
// proxy must serve, one per distinct probe, in container and probe order.
func collectProbes(spec *corev1.PodSpec, p *Policy, errs *problems) []config.ProbePassthrough {
	var out []config.ProbePassthrough
	seen := map[string]config.ProbePassthrough{}
	for i := range spec.Containers {
		c := &spec.Containers[i]
		for _, slot := range containerProbes(c) {
			pr := slot.probe
			if pr == nil {
				continue
			}
			// where names the probe in errors only: built on demand, not for every probe.
			where := func() string { return "container " + c.Name + " " + slot.what }
			switch {
			case pr.HTTPGet != nil && pr.HTTPGet.Host == "" && probeRef(pr.HTTPGet.Port, c, p.Target):
				pt, err := passthroughOf(pr.HTTPGet, p.UpstreamPort)
				if err != nil {
					errs.add(AnnotationPort, p.Target.String(), fmt.Sprintf("%s probes path %q, which the proxy cannot pass through (it must be absolute and clean, without escapes)", where(), pr.HTTPGet.Path), "probes of the protected port with a plain path, or an exec probe")
					continue
				}
				if other, ok := seen[pt.ServedURI()]; ok {
					if other != pt {
						errs.add(AnnotationPort, p.Target.String(), fmt.Sprintf("%s probes %s over %s, another probe the same path over %s", where(), pt.Path, pt.Scheme, other.Scheme), "probes of one path over one scheme")
					}
					continue
				}
				seen[pt.ServedURI()] = pt
				out = append(out, pt)
			case pr.GRPC != nil && pr.GRPC.Port == p.Target.Number && p.Mode != PortModeRename:
				errs.add(AnnotationPortMode, string(p.Mode), where()+" is a gRPC probe of the protected port, which the proxy cannot pass through", "rename, or an httpGet or exec probe")
			}
		}
		if l := c.Lifecycle; l != nil && p.Mode != PortModeRename {
			for _, h := range []*corev1.LifecycleHandler{l.PostStart, l.PreStop} {
				if h != nil && (h.HTTPGet != nil && probeRef(h.HTTPGet.Port, c, p.Target) || h.TCPSocket != nil && probeRef(h.TCPSocket.Port, c, p.Target)) {
					errs.add(AnnotationPortMode, string(p.Mode), "container "+c.Name+" has a lifecycle hook on the protected port, which would reach the proxy", "rename, or an exec hook")
				}
			}
		}
	}
	return out
}

// rewriteProbes points the app's probes of the protected port at the proxy's endpoints port:
// httpGet to the pass-through (HTTPS), and in takeover mode tcpSocket to the endpoints port
// itself (the app listens on loopback only, where the kubelet cannot connect).
func rewriteProbes(c *corev1.Container, p *Policy) {
	for _, slot := range containerProbes(c) {
		pr := slot.probe
		if pr == nil {
			continue
		}
		switch {
		case pr.HTTPGet != nil && pr.HTTPGet.Host == "" && probeRef(pr.HTTPGet.Port, c, p.Target):
			pt, err := passthroughOf(pr.HTTPGet, p.UpstreamPort)
			if err != nil {
				continue // refused by collectProbes
			}
			pr.HTTPGet.Port = intstr.FromInt32(p.EndpointsPort)
			pr.HTTPGet.Scheme = corev1.URISchemeHTTPS
			pr.HTTPGet.Path = pt.ServedURI()
		case pr.TCPSocket != nil && pr.TCPSocket.Host == "" && p.Mode == PortModeTakeover && probeRef(pr.TCPSocket.Port, c, p.Target):
			pr.TCPSocket.Port = intstr.FromInt32(p.EndpointsPort)
		}
	}
}

// takeoverAppContainer moves the app off the protected port: its port entry goes to the proxy,
// and the preset's or upstream-listen's settings bind it to 127.0.0.1:<upstream port>.
func takeoverAppContainer(c *corev1.Container, p *Policy) *corev1.ContainerPort {
	var moved *corev1.ContainerPort
	ports := c.Ports[:0:0]
	for _, port := range c.Ports {
		if port.ContainerPort == p.Target.Number && isTCP(port) && moved == nil {
			moved = port.DeepCopy()
			continue
		}
		ports = append(ports, port)
	}
	c.Ports = ports
	if len(c.Ports) == 0 {
		c.Ports = nil
	}
	applyListen(c, p.Listen, p.UpstreamPort)
	return moved
}

// String is the target as rbac-proxy.io/port would name it.
func (t PortTarget) String() string {
	if t.Name != "" {
		return t.Name
	}
	return strconv.Itoa(int(t.Number))
}

func probeFlags(probes []config.ProbePassthrough) []string {
	out := make([]string, len(probes))
	for i, pt := range probes {
		out[i] = FlagProbePassthrough + "=" + pt.String()
	}
	return out
}

// PodSecurityEnforceLabel is the Namespace label of the Pod Security admission level enforced there.
const PodSecurityEnforceLabel = "pod-security.kubernetes.io/enforce"

// checkRedirect refuses redirect where its init container would do harm or be refused: on a
// hostNetwork Pod its rules would land in the node's own network namespace, and the Pod Security
// levels baseline and restricted forbid the NET_ADMIN capability it needs. It also gives the
// proxy's port its own name, since the app keeps the protected port's.
func checkRedirect(spec *corev1.PodSpec, in PolicyInput, p *Policy, errs *problems) {
	if p.Mode != PortModeRedirect {
		return
	}
	for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for _, c := range cs {
			if c.Name == redirectContainerName {
				errs.add(AnnotationPortMode, string(p.Mode), "the Pod already has a container named "+redirectContainerName, "a Pod without a container named "+redirectContainerName)
			}
		}
	}
	if spec.HostNetwork {
		errs.add(AnnotationPortMode, string(p.Mode), "the Pod uses hostNetwork, so the redirect rules would be installed on the node itself", "rename or takeover for hostNetwork Pods")
	}
	if level := in.NamespaceLabels[PodSecurityEnforceLabel]; level == "baseline" || level == "restricted" {
		errs.add(AnnotationPortMode, string(p.Mode), fmt.Sprintf("namespace %s enforces the Pod Security level %s (%s), which forbids the NET_ADMIN capability of the redirect init container", in.Namespace, level, PodSecurityEnforceLabel), "rename or takeover, or a namespace whose enforced level is privileged")
	}
	if p.Target.Number == 0 {
		return
	}
	used := map[string]bool{}
	for _, d := range declaredPorts(spec) {
		if d.port.Name != "" {
			used[d.port.Name] = true
		}
	}
	p.Target.AppPortName = p.Target.Name
	p.Target.ProxyPortName = uniquePortName(proxyPortFallbackName, used)
}

// redirectContainerName is the init container of redirect mode.
const redirectContainerName = "rbac-proxy-redirect"

// redirectCommand is the injector binary in the proxy's image.
const redirectCommand = "/rbac-proxy-injector"

// redirectContainer installs the nftables rules of redirect mode and exits. It runs as root
// because a non-root process does not get the capabilities a container adds (Kubernetes sets no
// ambient capabilities), with NET_ADMIN only, and changes nothing but the Pod's network namespace.
func redirectContainer(p *Policy) corev1.Container {
	return corev1.Container{
		Name:            redirectContainerName,
		Image:           p.Image,
		ImagePullPolicy: p.PullPolicy,
		Command:         []string{redirectCommand},
		Args: []string{
			"redirect",
			fmt.Sprintf("--port=%d", p.Target.Number),
			fmt.Sprintf("--to=%d", p.ProxyPort),
			fmt.Sprintf("--exclude-uid=%d", proxyUID),
		},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("32Mi")},
		},
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		SecurityContext: &corev1.SecurityContext{
			RunAsNonRoot:             ptr.To(false),
			RunAsUser:                ptr.To[int64](0),
			RunAsGroup:               ptr.To[int64](0),
			AllowPrivilegeEscalation: ptr.To(false),
			ReadOnlyRootFilesystem:   ptr.To(true),
			Capabilities:             &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}, Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
	}
}
