package check

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/rbac-proxy/rbac-proxy/webhook"
	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// ruleExporters: Pods without the proxy that run a known exporter (the presets' own
// detection), or that have a port named metrics, in any namespace. A Pod that asks for the
// proxy is NotInjected's, not reported twice; one that opts out, or in a namespace the
// webhook leaves out, is reported only for a known exporter.
func ruleExporters(a *analysis, x *assessed) {
	var exporters, ports []string
	var exporterPods, portPods []*corev1.Pod
	presets := map[string]bool{}
	var preset []string
	for _, p := range x.pods {
		if runsProxy(p) {
			continue
		}
		d, err := webhook.OptIn(p, x.nsLabels)
		if err == nil && d.Verdict == webhook.VerdictInject && !x.excluded {
			continue
		}
		// An explicit opt-out is the operator's choice for a port named metrics; a known
		// exporter is reported all the same.
		optedOut := err == nil && d.By != "" && !d.ByNamespace
		if name := exporterOf(p); name != "" {
			exporters = append(exporters, p.Name)
			exporterPods = append(exporterPods, p)
			if !presets[name] {
				presets[name] = true
				preset = append(preset, name)
			}
			continue
		}
		if hasMetricsPort(p) && !optedOut && !x.excluded {
			ports = append(ports, p.Name)
			portPods = append(portPods, p)
		}
	}
	if len(exporters) > 0 {
		a.find(CodeUnprotectedExporter, x.ref, x, fmt.Sprintf("%s %s %s with no proxy in front%s", x.podsPhrase(exporters), verb(exporters, "runs", "run"), strings.Join(preset, ", "), marksNote(exporterPods)), x.optInFix(exporters))
	}
	if len(ports) > 0 {
		a.find(CodeUnprotectedMetricsPort, x.ref, x, fmt.Sprintf("%s %s a port named %s with no proxy in front%s", x.podsPhrase(ports), verb(ports, "has", "have"), inject.DefaultPortName, marksNote(portPods)), x.optInFix(ports))
	}
}

// exporterOf names the preset that recognizes one of the Pod's containers, empty for none.
func exporterOf(p *corev1.Pod) string {
	for i := range p.Spec.Containers {
		if pr := inject.DetectPreset(&p.Spec.Containers[i]); pr != nil {
			return pr.Name
		}
	}
	return ""
}

func hasMetricsPort(p *corev1.Pod) bool {
	for _, c := range p.Spec.Containers {
		for _, port := range c.Ports {
			if port.Name == inject.DefaultPortName {
				return true
			}
		}
	}
	return false
}

// podsPhrase is "Pod P" for one Pod, "N of M Pods (P, Q)" for more of a workload's.
func (x *assessed) podsPhrase(pods []string) string {
	if len(pods) == 1 {
		return "Pod " + pods[0]
	}
	return fmt.Sprintf("%d of %d Pods (%s)", len(pods), len(x.pods), shortList(pods))
}

func verb(items []string, one, many string) string {
	if len(items) == 1 {
		return one
	}
	return many
}

// optInFix is how the workload asks for the proxy and gets it.
func (x *assessed) optInFix(pods []string) string {
	if x.excluded {
		return "run it in a namespace the injector's webhook serves: it leaves " + x.ref.Namespace + " out"
	}
	where := x.templateField("metadata.annotations")
	return fmt.Sprintf("%s, or set %s: \"true\" in %s; then %s", command("kubectl", "label", "namespace", x.ref.Namespace, inject.LabelInject+"="+inject.NamespaceInjectEnabled), inject.AnnotationInject, where, x.restartFix(pods))
}
