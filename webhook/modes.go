package webhook

import (
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/rbac-proxy/rbac-proxy/proxy"
)

// internalPortOffset: in takeover mode the app moves to its port + this, by default.
const internalPortOffset = 10000

// parseMode reads rbac-proxy.io/port-mode, preset and upstream-listen into the policy.
func parseMode(spec *corev1.PodSpec, ann map[string]string, p *Policy, targetOK bool, errs *errorList) {
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
		case PortModeRename, PortModeTakeover:
			p.Mode = PortMode(modeV)
		default:
			errs.add(AnnotationPortMode, modeV, "unknown mode", "rename, takeover")
			return
		}
	}
	switch p.Mode {
	case PortModeRename:
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
func chooseUpstreamPort(spec *corev1.PodSpec, ann map[string]string, p *Policy, errs *errorList) {
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
func passthroughOf(h *corev1.HTTPGetAction, upstreamPort int32) (proxy.ProbePassthrough, error) {
	scheme := "http"
	if h.Scheme == corev1.URISchemeHTTPS {
		scheme = "https"
	}
	path := h.Path
	if path == "" {
		path = "/"
	}
	return proxy.ParseProbePassthrough(fmt.Sprintf("%s:GET:%d:%s", scheme, upstreamPort, path))
}

// collectProbes validates the app's probes against the mode and returns the pass-throughs the
// proxy must serve, one per distinct probe, in container and probe order.
func collectProbes(spec *corev1.PodSpec, p *Policy, errs *errorList) []proxy.ProbePassthrough {
	var out []proxy.ProbePassthrough
	seen := map[string]proxy.ProbePassthrough{}
	for i := range spec.Containers {
		c := &spec.Containers[i]
		for _, slot := range containerProbes(c) {
			pr := slot.probe
			if pr == nil {
				continue
			}
			where := fmt.Sprintf("container %s %s", c.Name, slot.what)
			switch {
			case pr.HTTPGet != nil && pr.HTTPGet.Host == "" && probeRef(pr.HTTPGet.Port, c, p.Target):
				pt, err := passthroughOf(pr.HTTPGet, p.UpstreamPort)
				if err != nil {
					errs.add(AnnotationPort, p.Target.String(), fmt.Sprintf("%s probes path %q, which the proxy cannot pass through (it must be absolute and clean, without escapes)", where, pr.HTTPGet.Path), "probes of the protected port with a plain path, or an exec probe")
					continue
				}
				if other, ok := seen[pt.ServedURI()]; ok {
					if other != pt {
						errs.add(AnnotationPort, p.Target.String(), fmt.Sprintf("%s probes %s over %s, another probe the same path over %s", where, pt.Path, pt.Scheme, other.Scheme), "probes of one path over one scheme")
					}
					continue
				}
				seen[pt.ServedURI()] = pt
				out = append(out, pt)
			case pr.GRPC != nil && pr.GRPC.Port == p.Target.Number && p.Mode == PortModeTakeover:
				errs.add(AnnotationPortMode, string(p.Mode), where+" is a gRPC probe of the protected port, which the proxy cannot pass through", "rename, or an httpGet or exec probe")
			}
		}
		if l := c.Lifecycle; l != nil && p.Mode == PortModeTakeover {
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

func probeFlags(probes []proxy.ProbePassthrough) []string {
	out := make([]string, len(probes))
	for i, pt := range probes {
		out[i] = FlagProbePassthrough + "=" + pt.String()
	}
	return out
}
