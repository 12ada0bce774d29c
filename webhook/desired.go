package webhook

import (
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
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
func DesiredFor(pod *corev1.Pod, sw *StoredWorkload, d *Defaults, namespaceLabels map[string]string) (*Desired, error) {
	tmpl := &corev1.Pod{ObjectMeta: *sw.Template.ObjectMeta.DeepCopy(), Spec: sw.Template.Spec}
	tmpl.Namespace = pod.Namespace
	// The workload must ask for the proxy where the webhook serves it, as at admission: a label
	// on a Pod, or on a template, is not enough in a namespace that never opted in.
	decision, err := optIn(tmpl, namespaceLabels)
	if err != nil {
		return nil, refused("the Pod template of %s %s: %v", sw.Kind, sw.Name, err)
	}
	if decision.Verdict != VerdictInject {
		return nil, refused("the Pod template of %s %s does not ask for the proxy (%s)", sw.Kind, sw.Name, decision.Reason)
	}
	errs := &problems{}
	tls := parseTLS(tmpl.Annotations, PolicyInput{Defaults: d, Namespace: pod.Namespace, Workload: sw.Workload}, errs)
	if err := errs.err(); err != nil {
		return nil, refused("the TLS policy of %s %s: %v", sw.Kind, sw.Name, err)
	}
	out := &Desired{}
	if v, ok := tmpl.Annotations[AnnotationClientCA]; ok {
		ca, problem := parseClientCA(v, d)
		if problem != "" {
			return nil, refused("the client CA of %s %s: %s=%q: %s", sw.Kind, sw.Name, AnnotationClientCA, v, problem)
		}
		out.ScrapersCA = ca.Source == ClientCAScrapers
	}
	// Whatever is due (a Certificate, the scrapers' CA), only for the injector's proxy serving
	// from the Secret the workload's template names now: a template that changed since the Pod
	// was made (a paused rollout) is reported, not silently skipped.
	if problem := checkInjectedProxy(pod, d, tls.SecretName); problem != "" {
		return nil, refused("Pod %s/%s %s, so it gets nothing from the injector", pod.Namespace, pod.Name, problem)
	}
	if tls.Certificate != nil {
		out.Certificate = NewCertificate(tls.Certificate, pod.Namespace, sw.Workload)
	}
	return out, nil
}

// checkInjectedProxy says how the Pod falls short of running the injector's proxy from Secret
// secret, empty when it does not: a Pod that only looks injected (a container named rbac-proxy,
// the status annotation) must not be handed a serving certificate.
func checkInjectedProxy(pod *corev1.Pod, d *Defaults, secret string) string {
	c := ProxyContainer(pod)
	switch {
	case c == nil:
		return "has no " + ContainerName + " container"
	case c.Image != d.Image:
		return "runs " + ContainerName + " from image " + c.Image + ", not the injector's " + d.Image
	case len(c.Command) > 0:
		return "overrides the command of its " + ContainerName + " container"
	}
	mounted := false
	for _, v := range pod.Spec.Volumes {
		if v.Name == volumeTLS {
			mounted = v.Secret != nil && v.Secret.SecretName == secret
		}
	}
	if !mounted {
		return "does not mount Secret " + secret + " as volume " + volumeTLS
	}
	mounted = false
	for _, m := range c.VolumeMounts {
		if m.Name == volumeTLS && m.MountPath == tlsMountPath {
			mounted = true
		}
	}
	if !mounted {
		return "does not mount volume " + volumeTLS + " at " + tlsMountPath + " in its proxy"
	}
	flags := config.NewFlags(ContainerName)
	if err := flags.Parse(c.Args); err != nil {
		return "has proxy arguments the proxy refuses (" + err.Error() + ")"
	}
	cfg, err := flags.Config()
	if err != nil {
		return "has a proxy configuration the proxy refuses (" + err.Error() + ")"
	}
	if cfg.TLS.CertFile != tlsMountPath+"/tls.crt" || cfg.TLS.KeyFile != tlsMountPath+"/tls.key" {
		return "serves " + cfg.TLS.CertFile + ", not the certificate of volume " + volumeTLS
	}
	return ""
}
