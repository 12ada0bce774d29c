package inject

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
)

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

// containerProbes are a container's probes, in the order ProbeRewrite.Slot counts them.
func containerProbes(c *corev1.Container) []probeSlot {
	return []probeSlot{{"livenessProbe", c.LivenessProbe}, {"readinessProbe", c.ReadinessProbe}, {"startupProbe", c.StartupProbe}}
}

// ProbeRewrite points one of the app's probes of the protected port at the proxy's endpoints
// port.
type ProbeRewrite struct {
	// Container is the probe's container, by index in the Pod's containers; Slot is the probe in
	// containerProbes' order (liveness, readiness, startup).
	Container, Slot int
	// URI is the path and query the kubelet asks the endpoints port for over HTTPS, the probe's
	// pass-through; empty for a tcpSocket probe (takeover), which connects to the endpoints port
	// itself since the app listens on loopback only, where the kubelet cannot connect.
	URI string
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
// proxy must serve, one per distinct probe, in container and probe order, and how each probe of
// the protected port is pointed at the proxy.
func collectProbes(spec *corev1.PodSpec, p *Policy, errs *problems) ([]config.ProbePassthrough, []ProbeRewrite) {
	var out []config.ProbePassthrough
	var rewrites []ProbeRewrite
	seen := map[string]config.ProbePassthrough{}
	for i := range spec.Containers {
		c := &spec.Containers[i]
		for n, slot := range containerProbes(c) {
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
				rewrites = append(rewrites, ProbeRewrite{Container: i, Slot: n, URI: pt.ServedURI()})
				if other, ok := seen[pt.ServedURI()]; ok {
					if other != pt {
						errs.add(AnnotationPort, p.Target.String(), fmt.Sprintf("%s probes %s over %s, another probe the same path over %s", where(), pt.Path, pt.Scheme, other.Scheme), "probes of one path over one scheme")
					}
					continue
				}
				seen[pt.ServedURI()] = pt
				out = append(out, pt)
			case pr.TCPSocket != nil && pr.TCPSocket.Host == "" && p.Mode == PortModeTakeover && probeRef(pr.TCPSocket.Port, c, p.Target):
				rewrites = append(rewrites, ProbeRewrite{Container: i, Slot: n})
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
	return out, rewrites
}
