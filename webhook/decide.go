package webhook

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
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
	// By is the label or annotation that decided, as "label KEY=VALUE" or "annotation
	// KEY=VALUE"; empty when nothing asked. ByNamespace says it is the Namespace's label, not
	// the Pod's own: check names the object that carries it.
	By          string
	ByNamespace bool
}

// Decide applies the opt-in rules: a Pod label or annotation rbac-proxy.io/inject ("true" or
// "false") wins over the Namespace label rbac-proxy.io/inject=enabled; an injected Pod is left
// alone. A bad opt-in value is an error, not a silent skip.
func Decide(pod *corev1.Pod, namespaceLabels map[string]string) (Decision, error) {
	if inject.IsInjected(pod) {
		return Decision{Verdict: VerdictInjected, Reason: "the Pod already has the proxy"}, nil
	}
	return OptIn(pod, namespaceLabels)
}

// OptIn applies the opt-in rules alone, whether or not the Pod carries the proxy already: the
// certificate controller asks it of injected Pods and of their workloads' templates, check of
// templates and Pods alike.
func OptIn(pod *corev1.Pod, namespaceLabels map[string]string) (Decision, error) {
	var errs field.ErrorList
	label, hasLabel := pod.Labels[inject.LabelInject]
	ann, hasAnn := pod.Annotations[inject.AnnotationInject]
	const allowed = "true, false"
	check := func(what, v string) {
		if v != "true" && v != "false" {
			errs = append(errs, inject.InvalidAnnotation(inject.AnnotationInject, v, "bad "+what+" value", allowed))
		}
	}
	if hasLabel {
		check("label", label)
	}
	if hasAnn {
		check("annotation", ann)
	}
	if hasLabel && hasAnn && label != ann {
		errs = append(errs, inject.InvalidAnnotation(inject.AnnotationInject, ann, "the label says "+label+" and the annotation says "+ann, "the same value in label and annotation"))
	}
	if len(errs) > 0 {
		return Decision{}, &inject.PolicyError{Errors: errs}
	}
	// Label and annotation agree when both are set: the label is named.
	by := "annotation " + inject.AnnotationInject + "=" + ann
	if hasLabel {
		by = "label " + inject.LabelInject + "=" + label
	}
	switch {
	case label == "true" || ann == "true":
		return Decision{Verdict: VerdictInject, Reason: "the Pod opts in", By: by}, nil
	case label == "false" || ann == "false":
		return Decision{Verdict: VerdictSkip, Reason: "the Pod opts out", By: by}, nil
	case namespaceLabels[inject.LabelInject] == inject.NamespaceInjectEnabled:
		return Decision{Verdict: VerdictInject, Reason: "the Namespace enables injection",
			By: "label " + inject.LabelInject + "=" + inject.NamespaceInjectEnabled, ByNamespace: true}, nil
	}
	return Decision{Verdict: VerdictSkip, Reason: "neither the Pod nor its Namespace asks for injection"}, nil
}
