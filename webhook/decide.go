package webhook

import (
	corev1 "k8s.io/api/core/v1"
)

// Verdict is the outcome of the should-inject decision.
type Verdict string

const (
	VerdictInject   Verdict = "inject"
	VerdictSkip     Verdict = "skip"
	VerdictInjected Verdict = "already-injected"
)

// Decision says whether a Pod gets the proxy, and why.
type Decision struct {
	Verdict Verdict
	Reason  string
}

// Decide applies the opt-in rules: a Pod label or annotation rbac-proxy.io/inject ("true" or
// "false") wins over the Namespace label rbac-proxy.io/inject=enabled; an injected Pod is left
// alone. A bad opt-in value is an error, not a silent skip.
func Decide(pod *corev1.Pod, namespaceLabels map[string]string) (Decision, error) {
	if IsInjected(pod) {
		return Decision{VerdictInjected, "the Pod already has the proxy"}, nil
	}
	return optIn(pod, namespaceLabels)
}

// optIn applies the opt-in rules alone, whether or not the Pod carries the proxy already: the
// certificate controller asks it of injected Pods and of their workloads' templates.
func optIn(pod *corev1.Pod, namespaceLabels map[string]string) (Decision, error) {
	errs := &problems{}
	label, hasLabel := pod.Labels[LabelInject]
	ann, hasAnn := pod.Annotations[AnnotationInject]
	const allowed = "true, false"
	check := func(what, v string) {
		if v != "true" && v != "false" {
			errs.add(AnnotationInject, v, "bad "+what+" value", allowed)
		}
	}
	if hasLabel {
		check("label", label)
	}
	if hasAnn {
		check("annotation", ann)
	}
	if hasLabel && hasAnn && label != ann {
		errs.add(AnnotationInject, ann, "the label says "+label+" and the annotation says "+ann, "the same value in label and annotation")
	}
	if err := errs.err(); err != nil {
		return Decision{}, err
	}
	switch {
	case label == "true" || ann == "true":
		return Decision{VerdictInject, "the Pod opts in"}, nil
	case label == "false" || ann == "false":
		return Decision{VerdictSkip, "the Pod opts out"}, nil
	case namespaceLabels[LabelInject] == NamespaceInjectEnabled:
		return Decision{VerdictInject, "the Namespace enables injection"}, nil
	}
	return Decision{VerdictSkip, "neither the Pod nor its Namespace asks for injection"}, nil
}

// IsInjected reports whether the Pod already carries the proxy: the status annotation or a
// container by the proxy's name.
func IsInjected(pod *corev1.Pod) bool {
	return pod.Annotations[AnnotationStatus] == StatusInjected || ProxyContainer(pod) != nil
}

// ProxyContainer returns the Pod's proxy container (an init container in native sidecar mode),
// or nil when it has none.
func ProxyContainer(pod *corev1.Pod) *corev1.Container {
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			if cs[i].Name == ContainerName {
				return &cs[i]
			}
		}
	}
	return nil
}
