package inject

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// PortMode is how the proxy gets in front of the protected port (rbac-proxy.io/port-mode).
type PortMode string

const (
	// PortModeRename: the proxy listens on its own port and takes over the protected port's name;
	// the app keeps its port.
	PortModeRename PortMode = "rename"
	// PortModeTakeover: the proxy listens on the protected port's own number and name; the app is
	// moved to 127.0.0.1 on an internal port, as a preset or rbac-proxy.io/upstream-listen says.
	PortModeTakeover PortMode = "takeover"
	// PortModeRedirect: the app is left as it is; the proxy listens on its own port, and an init
	// container redirects the Pod's inbound connections to the protected port to it (nftables),
	// except the proxy's own.
	PortModeRedirect PortMode = "redirect"
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
			errs.add(AnnotationPreset, presetV, "unknown preset", AllowedOf(AnnotationPreset))
		}
	}
	if listenSet {
		p.Listen = parseUpstreamListen(listenV, errs)
		if presetSet {
			errs.add(AnnotationUpstreamListen, listenV, "conflicts with "+AnnotationPreset, "only one of "+AnnotationPreset+" and "+AnnotationUpstreamListen)
		}
	}
	if !presetSet && !listenSet && container != nil {
		if pr := DetectPreset(container); pr != nil {
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
			errs.add(AnnotationPortMode, modeV, "unknown mode", AllowedOf(AnnotationPortMode))
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
			errs.add(AnnotationPortMode, string(p.Mode), fmt.Sprintf("no preset recognizes container %s (image %s), so the webhook does not know how to move it to 127.0.0.1", container.Name, container.Image), "rename, or name a preset with "+AnnotationPreset+" ("+strings.Join(presetNames(), ", ")+") or set "+AnnotationUpstreamListen)
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
			errs.add(AnnotationUpstreamPort, v, "not a port number", AllowedOf(AnnotationUpstreamPort))
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
	errs.addUnset(AnnotationUpstreamPort, "no free port for the app", AllowedOf(AnnotationUpstreamPort))
}

// PodSecurityEnforceLabel is the Namespace label of the Pod Security admission level enforced there.
const PodSecurityEnforceLabel = "pod-security.kubernetes.io/enforce"

// checkRedirect refuses redirect where its init container would do harm or be refused: on a
// hostNetwork Pod its rules would land in the node's own network namespace, and the Pod Security
// levels baseline and restricted forbid the NET_ADMIN capability it needs.
func checkRedirect(spec *corev1.PodSpec, in PolicyInput, mode PortMode, errs *problems) {
	if mode != PortModeRedirect {
		return
	}
	for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for _, c := range cs {
			if c.Name == redirectContainerName {
				errs.add(AnnotationPortMode, string(mode), "the Pod already has a container named "+redirectContainerName, "a Pod without a container named "+redirectContainerName)
			}
		}
	}
	if spec.HostNetwork {
		errs.add(AnnotationPortMode, string(mode), "the Pod uses hostNetwork, so the redirect rules would be installed on the node itself", "rename or takeover for hostNetwork Pods")
	}
	if level := in.NamespaceLabels[PodSecurityEnforceLabel]; level == "baseline" || level == "restricted" {
		errs.add(AnnotationPortMode, string(mode), fmt.Sprintf("namespace %s enforces the Pod Security level %s (%s), which forbids the NET_ADMIN capability of the redirect init container", in.Namespace, level, PodSecurityEnforceLabel), "rename or takeover, or a namespace whose enforced level is privileged")
	}
}
