package webhook

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// podProblems checks an injected Pod for what the API server would refuse, and for the promises
// of the render: one proxy, read-only mounts, a restricted security context, no probe left
// pointing at a port name its container lost.
func podProblems(before, pod *corev1.Pod) []string {
	declaredBefore := map[string]map[string]bool{}
	for _, c := range before.Spec.Containers {
		declaredBefore[c.Name] = map[string]bool{}
		for _, p := range c.Ports {
			declaredBefore[c.Name][p.Name] = true
		}
	}
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	volumes := map[string]bool{}
	for _, v := range pod.Spec.Volumes {
		if volumes[v.Name] {
			bad("duplicate volume %s", v.Name)
		}
		volumes[v.Name] = true
	}
	names := map[string]bool{}
	portNames := map[string]bool{}
	proxies := 0
	all := append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...)
	for _, c := range all {
		if names[c.Name] {
			bad("duplicate container %s", c.Name)
		}
		names[c.Name] = true
		for _, m := range c.VolumeMounts {
			if !volumes[m.Name] {
				bad("container %s mounts missing volume %s", c.Name, m.Name)
			}
		}
		own := map[string]bool{}
		for _, p := range c.Ports {
			if p.Name == "" {
				continue
			}
			if msgs := validation.IsValidPortName(p.Name); len(msgs) > 0 && strings.HasPrefix(p.Name, "app-") {
				bad("generated port name %q: %s", p.Name, strings.Join(msgs, "; "))
			}
			if portNames[p.Name] {
				bad("duplicate port name %s", p.Name)
			}
			portNames[p.Name], own[p.Name] = true, true
		}
		for _, pr := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
			if pr == nil {
				continue
			}
			for _, port := range []*intstr.IntOrString{httpPort(pr), tcpPort(pr)} {
				if port != nil && port.Type == intstr.String && !own[port.StrVal] && declaredBefore[c.Name][port.StrVal] {
					bad("container %s probe refers to port %s it no longer declares", c.Name, port.StrVal)
				}
			}
		}
		if c.Name == inject.ContainerName {
			proxies++
			problems = append(problems, proxyProblems(before, pod, c)...)
		}
	}
	if proxies != 1 {
		bad("%d proxy containers", proxies)
	}
	return problems
}

func httpPort(p *corev1.Probe) *intstr.IntOrString {
	if p.HTTPGet != nil {
		return &p.HTTPGet.Port
	}
	return nil
}

func tcpPort(p *corev1.Probe) *intstr.IntOrString {
	if p.TCPSocket != nil {
		return &p.TCPSocket.Port
	}
	return nil
}

func proxyProblems(before, pod *corev1.Pod, c corev1.Container) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	for _, m := range c.VolumeMounts {
		if !m.ReadOnly {
			bad("proxy mount %s is writable", m.Name)
		}
	}
	sc := c.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil ||
		len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || sc.SeccompProfile == nil ||
		sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		bad("proxy security context is not restricted: %+v", sc)
	}
	if len(c.Ports) != 1 {
		bad("proxy declares %d ports", len(c.Ports))
	}
	for _, other := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		if other.Name == inject.ContainerName {
			continue
		}
		for _, p := range other.Ports {
			for _, pp := range c.Ports {
				if p.ContainerPort == pp.ContainerPort {
					bad("proxy port %d also declared by %s", pp.ContainerPort, other.Name)
				}
			}
		}
	}
	had := map[string]bool{}
	for _, v := range before.Spec.Volumes {
		had[v.Name] = true
	}
	for _, m := range pod.Spec.Containers {
		if m.Name == inject.ContainerName {
			continue
		}
		for _, v := range m.VolumeMounts {
			if !had[v.Name] {
				bad("app container %s mounts the proxy's volume %s", m.Name, v.Name)
			}
		}
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Scheme != corev1.URISchemeHTTPS {
		bad("proxy readiness probe is not HTTPS")
	}
	switch cfg, err := inject.ProxyConfigOf(c.Args); {
	case err != nil:
		bad("the proxy refuses %q: %v", c.Args, err)
	case cfg.Upstream.URL == nil || cfg.Upstream.URL.Hostname() != "127.0.0.1":
		bad("proxy has no loopback upstream: %v", c.Args)
	}
	return problems
}
