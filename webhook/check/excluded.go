package check

import (
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// webhookNameSuffix ends the names of the injector's webhooks (namespace.inject.rbac-proxy.io
// and pod.inject.rbac-proxy.io, in the chart and deploy/).
const webhookNameSuffix = ".inject.rbac-proxy.io"

// namespaceNameLabel is the label the API server gives every Namespace: its name.
const namespaceNameLabel = "kubernetes.io/metadata.name"

// excludedNamespaces returns, of namespaces, those that every webhook of the injector leaves out
// by name (the chart's kube-system, its own namespace and webhook.excludeNamespaces): the
// webhook never sees their Pods. Without any webhook of the injector, none is excluded.
func excludedNamespaces(configs []admissionregistrationv1.MutatingWebhookConfiguration, namespaces []string) []string {
	var byName []labels.Requirements
	hooks, _ := injectorWebhooks(configs)
	for _, w := range hooks {
		var reqs labels.Requirements
		if w.NamespaceSelector != nil {
			sel, err := metav1.LabelSelectorAsSelector(w.NamespaceSelector)
			if err != nil {
				// A selector the API server would not have stored: assume it serves all.
				return nil
			}
			all, _ := sel.Requirements()
			for _, r := range all {
				if r.Key() == namespaceNameLabel {
					reqs = append(reqs, r)
				}
			}
		}
		byName = append(byName, reqs)
	}
	if len(byName) == 0 {
		return nil
	}
	var out []string
	for _, ns := range namespaces {
		name := labels.Set{namespaceNameLabel: ns}
		excluded := true
		for _, reqs := range byName {
			if labels.NewSelector().Add(reqs...).Matches(name) {
				excluded = false
			}
		}
		if excluded {
			out = append(out, ns)
		}
	}
	return out
}
