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
// the status annotation) must not be handed a serving certificate.
func CheckInjectedProxy(pod *corev1.Pod, d *Defaults, secret string) string {
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
		if v.Name == TLSVolume {
			mounted = v.Secret != nil && v.Secret.SecretName == secret
		}
	}
	if !mounted {
		return "does not mount Secret " + secret + " as volume " + TLSVolume
	}
	mounted = false
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
