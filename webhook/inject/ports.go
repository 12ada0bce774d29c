package inject

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// DefaultPortName is the port name protected when rbac-proxy.io/port is not set.
const DefaultPortName = "metrics"

// maxPortName is the length limit of a container port name (an IANA service name).
const maxPortName = 15

// proxyPortFallbackName names the proxy's port when the protected port has no name.
const proxyPortFallbackName = "rbac-proxy"

// PortTarget is the app port the proxy protects and how the Pod's port names move.
type PortTarget struct {
	// Number is the app's port; the proxy's upstream is 127.0.0.1:Number.
	Number int32
	// Container is the app container that declares the port; empty when the port is not declared.
	Container string
	// Name is the declared port's name, empty when it has none.
	Name string
	// AppPortName is the app port's new name (empty when it had no name).
	AppPortName string
	// ProxyPortName is the name of the proxy's port: the protected port's old name, so Services
	// that target the name reach the proxy.
	ProxyPortName string
}

// declaredPort is a port declared by one of the Pod's containers.
type declaredPort struct {
	container string
	app       bool // declared by a regular (app) container
	port      corev1.ContainerPort
}

func declaredPorts(spec *corev1.PodSpec) []declaredPort {
	var out []declaredPort
	for _, c := range spec.InitContainers {
		for _, p := range c.Ports {
			out = append(out, declaredPort{container: c.Name, port: p})
		}
	}
	for _, c := range spec.Containers {
		for _, p := range c.Ports {
			out = append(out, declaredPort{container: c.Name, app: true, port: p})
		}
	}
	return out
}

func isTCP(p corev1.ContainerPort) bool {
	return p.Protocol == "" || p.Protocol == corev1.ProtocolTCP
}

func describePorts(ports []declaredPort) string {
	var parts []string
	for _, p := range ports {
		if p.port.Name != "" {
			parts = append(parts, fmt.Sprintf("%s (%d)", p.port.Name, p.port.ContainerPort))
		} else {
			parts = append(parts, strconv.Itoa(int(p.port.ContainerPort)))
		}
	}
	return strings.Join(parts, ", ")
}

// resolveTarget finds the port to protect from rbac-proxy.io/port or the defaults.
func resolveTarget(spec *corev1.PodSpec, annotations map[string]string, errs *problems) (PortTarget, bool) {
	var app []declaredPort
	for _, p := range declaredPorts(spec) {
		if p.app && isTCP(p.port) {
			app = append(app, p)
		}
	}
	allowed := AllowedOf(AnnotationPort)
	if len(app) > 0 {
		allowed += "; the app containers declare " + describePorts(app)
	}

	value, set := annotations[AnnotationPort]
	if !set {
		for _, p := range app {
			if p.port.Name == DefaultPortName {
				return targetOf(p), true
			}
		}
		switch len(app) {
		case 1:
			return targetOf(app[0]), true
		case 0:
			errs.addUnset(AnnotationPort, "no port to protect: the Pod declares no TCP container port", allowed)
		default:
			errs.addUnset(AnnotationPort, "ambiguous: the Pod declares several ports and none is named "+DefaultPortName, allowed)
		}
		return PortTarget{}, false
	}

	if n, err := strconv.Atoi(value); err == nil {
		if n < 1 || n > 65535 {
			errs.add(AnnotationPort, value, "port number out of range", allowed)
			return PortTarget{}, false
		}
		for _, p := range declaredPorts(spec) {
			if p.port.ContainerPort == int32(n) && p.app && !isTCP(p.port) {
				errs.add(AnnotationPort, value, "the port is declared with protocol "+string(p.port.Protocol), allowed)
				return PortTarget{}, false
			}
		}
		for _, p := range app {
			if p.port.ContainerPort == int32(n) {
				return targetOf(p), true
			}
		}
		return PortTarget{Number: int32(n)}, true
	}
	for _, p := range declaredPorts(spec) {
		if p.port.Name != value {
			continue
		}
		switch {
		case !p.app:
			errs.add(AnnotationPort, value, "the port is declared by init container "+p.container+", not an app container", allowed)
		case !isTCP(p.port):
			errs.add(AnnotationPort, value, "the port is declared with protocol "+string(p.port.Protocol), allowed)
		default:
			return targetOf(p), true
		}
		return PortTarget{}, false
	}
	errs.add(AnnotationPort, value, "no app container declares a port with this name", allowed)
	return PortTarget{}, false
}

func targetOf(p declaredPort) PortTarget {
	return PortTarget{Number: p.port.ContainerPort, Container: p.container, Name: p.port.Name}
}

// checkNameUnique refuses a protected port whose name another container also declares: Services
// that target the name would keep reaching that container instead of the proxy.
func checkNameUnique(spec *corev1.PodSpec, t PortTarget, errs *problems) {
	if t.Name == "" {
		return
	}
	for _, p := range declaredPorts(spec) {
		if p.port.Name == t.Name && p.container != t.Container {
			errs.add(AnnotationPort, t.Name, fmt.Sprintf("container %s also declares a port named %s, so Services targeting the name could bypass the proxy", p.container, t.Name), "a port name only one container declares, or a port number")
		}
	}
}

// nameTarget fills in the port names: the proxy takes the protected port's name and the app's
// port gets a new, unused name within the 15-character limit; in redirect mode the app keeps its
// name and the proxy's port gets one of its own.
func nameTarget(spec *corev1.PodSpec, t *PortTarget, mode PortMode) {
	used := map[string]bool{}
	for _, p := range declaredPorts(spec) {
		if p.port.Name != "" {
			used[p.port.Name] = true
		}
	}
	if mode == PortModeRedirect {
		// The app keeps its port, name and all; the proxy's port gets a name of its own.
		t.AppPortName = t.Name
		t.ProxyPortName = uniquePortName(proxyPortFallbackName, used)
		return
	}
	if t.Name != "" {
		t.ProxyPortName = t.Name
		t.AppPortName = uniquePortName("app-"+t.Name, used)
		return
	}
	t.ProxyPortName = uniquePortName(proxyPortFallbackName, used)
}

// uniquePortName returns base, shortened to a valid port name, or base with a numeric suffix
// when that name is taken. The result is marked used. base must start with a letter.
func uniquePortName(base string, used map[string]bool) string {
	base = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r - 'A' + 'a'
		}
		return '-'
	}, base)
	for i := 1; ; i++ {
		suffix := ""
		if i > 1 {
			suffix = "-" + strconv.Itoa(i)
		}
		name := base
		if len(name)+len(suffix) > maxPortName {
			name = name[:maxPortName-len(suffix)]
		}
		name = strings.Trim(name, "-")
		for strings.Contains(name, "--") {
			name = strings.ReplaceAll(name, "--", "-")
		}
		name += suffix
		if !used[name] && len(validation.IsValidPortName(name)) == 0 {
			used[name] = true
			return name
		}
	}
}

// checkFreePort reports an error when port is declared by the Pod or is one of the taken numbers.
func checkFreePort(spec *corev1.PodSpec, annotation string, value int32, fromDefault bool, taken map[int32]string, errs *problems) {
	var clashes []string
	for _, p := range declaredPorts(spec) {
		if p.port.ContainerPort == value {
			clashes = append(clashes, fmt.Sprintf("declared by container %s", p.container))
		}
	}
	if what, ok := taken[value]; ok {
		clashes = append(clashes, "used by "+what)
	}
	if len(clashes) == 0 {
		return
	}
	sort.Strings(clashes)
	problem := fmt.Sprintf("port %d is already %s", value, strings.Join(clashes, " and "))
	allowed := AllowedOf(annotation)
	if fromDefault {
		errs.addUnset(annotation, "the default "+problem, allowed)
		return
	}
	errs.add(annotation, strconv.Itoa(int(value)), problem, allowed)
}

// String is the target as rbac-proxy.io/port would name it.
func (t PortTarget) String() string {
	if t.Name != "" {
		return t.Name
	}
	return strconv.Itoa(int(t.Number))
}
