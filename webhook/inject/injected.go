package inject

import (
	corev1 "k8s.io/api/core/v1"
)

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

// CheckInjectedProxy says how the Pod falls short of running the injector's proxy from Secret
// secret, empty when it does not: a Pod that only looks injected (a container named rbac-proxy,
// the status annotation) must not be handed a serving certificate. It is RunsProxy, with the
// injector's own image and the Secret the workload's template names now.
func CheckInjectedProxy(pod *corev1.Pod, d *Defaults, secret string) string {
	if c := ProxyContainer(pod); c != nil && c.Image != d.Image {
		return "runs " + ContainerName + " from image " + c.Image + ", not the injector's " + d.Image
	}
	if problem := RunsProxy(pod); problem != "" {
		return problem
	}
	if servingSecret(pod) != secret {
		return "does not mount Secret " + secret + " as volume " + TLSVolume
	}
	return ""
}

// RunsProxy says how the Pod falls short of running the proxy as the injector renders it, of
// whatever image and Secret, empty when it does not: its rbac-proxy container runs the image's
// own entrypoint with arguments the proxy parses, serving the certificate of volume
// rbac-proxy-tls, a Secret. The status annotation or a container of that name alone are marks
// anyone can put on a Pod; check counts a Pod as protected only when this passes.
func RunsProxy(pod *corev1.Pod) string {
	c := ProxyContainer(pod)
	switch {
	case c == nil:
		return "has no " + ContainerName + " container"
	case len(c.Command) > 0:
		return "overrides the command of its " + ContainerName + " container"
	case servingSecret(pod) == "":
		return "does not mount a Secret as volume " + TLSVolume
	}
	mounted := false
	for _, m := range c.VolumeMounts {
		if m.Name == TLSVolume && m.MountPath == tlsMountPath {
			mounted = true
		}
	}
	if !mounted {
		return "does not mount volume " + TLSVolume + " at " + tlsMountPath + " in its proxy"
	}
	cfg, err := ProxyConfigOf(c.Args)
	if err != nil {
		return "has proxy arguments the proxy refuses (" + err.Error() + ")"
	}
	if cfg.TLS.CertFile != tlsMountPath+"/tls.crt" || cfg.TLS.KeyFile != tlsMountPath+"/tls.key" {
		return "serves " + cfg.TLS.CertFile + ", not the certificate of volume " + TLSVolume
	}
	return ""
}

// servingSecret is the Secret of the Pod's volume rbac-proxy-tls, empty when it has none.
func servingSecret(pod *corev1.Pod) string {
	secret := ""
	for _, v := range pod.Spec.Volumes {
		if v.Name == TLSVolume {
			secret = ""
			if v.Secret != nil {
				secret = v.Secret.SecretName
			}
		}
	}
	return secret
}
