package webhook

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// templatePod is the workload's Pod template as a Pod of namespace: what the webhook is asked
// to admit when the workload makes a Pod.
func templatePod(sw *StoredWorkload, namespace string) *corev1.Pod {
	pod := &corev1.Pod{ObjectMeta: *sw.Template.ObjectMeta.DeepCopy(), Spec: *sw.Template.Spec.DeepCopy()}
	pod.Namespace = namespace
	return pod
}

// WorkloadPolicy is what the webhook does with the Pods the workload makes, decided and computed
// from its stored Pod template as admission does: the decision and, when it injects, the Policy.
// An error is the webhook's refusal: a bad opt-in value or a *inject.PolicyError.
func WorkloadPolicy(sw *StoredWorkload, namespace string, d *inject.Defaults, namespaceLabels map[string]string) (Decision, *inject.Policy, error) {
	pod := templatePod(sw, namespace)
	decision, err := OptIn(pod, namespaceLabels)
	if err != nil || decision.Verdict != VerdictInject {
		return decision, nil, err
	}
	p, err := PolicyFor(pod, inject.PolicyInput{Defaults: d, Namespace: namespace, Workload: sw.Workload, NamespaceLabels: namespaceLabels})
	return decision, p, err
}
