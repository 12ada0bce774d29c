package inject

import (
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// rewriteNamedPort changes a probe or lifecycle port that refers to name into number.
func rewriteNamedPort(port *intstr.IntOrString, name string, number int32) {
	if port.Type == intstr.String && port.StrVal == name {
		*port = intstr.FromInt32(number)
	}
}

// rewriteActionPorts rewrites the ports of a probe's or lifecycle hook's actions; Probe and
// LifecycleHandler are different types with the same two port-carrying actions.
func rewriteActionPorts(get *corev1.HTTPGetAction, tcp *corev1.TCPSocketAction, name string, number int32) {
	if get != nil {
		rewriteNamedPort(&get.Port, name, number)
	}
	if tcp != nil {
		rewriteNamedPort(&tcp.Port, name, number)
	}
}

// rewireAppContainer renames the protected port in its container and rewrites that container's
// probes and lifecycle hooks that referred to the old name to the port number.
func rewireAppContainer(c *corev1.Container, t PortTarget) {
	if t.Name == "" {
		return
	}
	for i := range c.Ports {
		if c.Ports[i].Name == t.Name {
			c.Ports[i].Name = t.AppPortName
		}
	}
	for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
		if p != nil {
			rewriteActionPorts(p.HTTPGet, p.TCPSocket, t.Name, t.Number)
		}
	}
	if c.Lifecycle != nil {
		for _, h := range []*corev1.LifecycleHandler{c.Lifecycle.PostStart, c.Lifecycle.PreStop} {
			if h != nil {
				rewriteActionPorts(h.HTTPGet, h.TCPSocket, t.Name, t.Number)
			}
		}
	}
}

// rewriteProbes points the app's probes of the protected port at the proxy's endpoints port, as
// the policy's ProbeRewrites say: httpGet to its pass-through over HTTPS, tcpSocket to the port.
func rewriteProbes(spec *corev1.PodSpec, p *Policy) {
	for _, r := range p.ProbeRewrites {
		pr := containerProbes(&spec.Containers[r.Container])[r.Slot].probe
		if r.URI == "" {
			pr.TCPSocket.Port = intstr.FromInt32(p.EndpointsPort)
			continue
		}
		pr.HTTPGet.Port = intstr.FromInt32(p.EndpointsPort)
		pr.HTTPGet.Scheme = corev1.URISchemeHTTPS
		pr.HTTPGet.Path = r.URI
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

// applyListen moves the app container to host:port as the settings say.
func applyListen(c *corev1.Container, settings []ListenSetting, port int32) {
	for _, s := range settings {
		value := strings.ReplaceAll(strings.ReplaceAll(s.Value, "{host}", "127.0.0.1"), "{port}", strconv.Itoa(int(port)))
		if s.Env != "" {
			setEnv(c, s.Env, value)
			continue
		}
		names := append([]string{s.Arg}, s.Aliases...)
		found := replaceFlag(c.Command, names, value) || replaceFlag(c.Args, names, value)
		if !found && !s.OnlyIfPresent {
			c.Args = append(c.Args, s.Arg+"="+value)
		}
	}
}

func setEnv(c *corev1.Container, name, value string) {
	for i := range c.Env {
		if c.Env[i].Name == name {
			c.Env[i] = corev1.EnvVar{Name: name, Value: value}
			return
		}
	}
	c.Env = append(c.Env, corev1.EnvVar{Name: name, Value: value})
}

// replaceFlag sets every --flag=v and "--flag v" in args to value; it reports whether it found one.
func replaceFlag(args []string, names []string, value string) bool {
	found := false
	for i := 0; i < len(args); i++ {
		for _, n := range names {
			switch {
			case strings.HasPrefix(args[i], n+"="):
				args[i], found = n+"="+value, true
			case args[i] == n && i+1 < len(args):
				args[i+1], found = value, true
				i++
			}
		}
	}
	return found
}
