package webhook

import (
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// Desired is what the certificate controller ensures for one stored, injected Pod.
type Desired struct {
	// Certificate is the workload's Certificate; nil when the Pod names its own Secret.
	Certificate *cmapi.Certificate
	// ScrapersCA says the namespace needs the scrapers' CA ConfigMap.
	ScrapersCA bool
}

// DesiredFor computes, from what the API server stored, what a Pod's workload gets: the policy
// is read from the workload's own Pod template (the Pod itself for a bare Pod), never from a
// Pod's claim to belong to someone else, and only for a Pod that runs the injector's proxy
// serving from that Certificate's Secret. A *RefusedError says why nothing is due.
func DesiredFor(pod *corev1.Pod, sw *StoredWorkload, d *inject.Defaults, namespaceLabels map[string]string) (*Desired, error) {
	tmpl := templatePod(sw, pod.Namespace)
	// The workload must ask for the proxy where the webhook serves it, as at admission: a label
	// on a Pod, or on a template, is not enough in a namespace that never opted in.
	decision, err := OptIn(tmpl, namespaceLabels)
	if err != nil {
		return nil, refused("the Pod template of %s %s: %v", sw.Kind, sw.Name, err)
	}
	if decision.Verdict != VerdictInject {
		return nil, refused("the Pod template of %s %s does not ask for the proxy (%s)", sw.Kind, sw.Name, decision.Reason)
	}
	tls, err := inject.ParseTLS(tmpl.Annotations, inject.PolicyInput{Defaults: d, Namespace: pod.Namespace, Workload: sw.Workload})
	if err != nil {
		return nil, refused("the TLS policy of %s %s: %v", sw.Kind, sw.Name, err)
	}
	out := &Desired{}
	if v, ok := tmpl.Annotations[inject.AnnotationClientCA]; ok {
		ca, problem := inject.ParseClientCA(v, d)
		if problem != "" {
			return nil, refused("the client CA of %s %s: %s=%q: %s", sw.Kind, sw.Name, inject.AnnotationClientCA, v, problem)
		}
		out.ScrapersCA = ca.Source == inject.ClientCAScrapers
	}
	// Whatever is due (a Certificate, the scrapers' CA), only for the injector's proxy serving
	// from the Secret the workload's template names now: a template that changed since the Pod
	// was made (a paused rollout) is reported, not silently skipped.
	if problem := inject.CheckInjectedProxy(pod, d, tls.SecretName); problem != "" {
		return nil, refused("Pod %s/%s %s, so it gets nothing from the injector", pod.Namespace, pod.Name, problem)
	}
	if tls.Certificate != nil {
		out.Certificate = NewCertificate(tls.Certificate, pod.Namespace, sw.Workload)
	}
	return out, nil
}
