package webhook

import (
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// The injector's caches hold objects selected by labels anyone may set: a Pod author can label
// large Pods rbac-proxy.io/status=injected, or Certificates managed-by=rbac-proxy-injector. What
// is kept of each object is what the injector reads, so such objects cost it little memory.

// trimPod keeps of a Pod its metadata and the parts of the spec the certificate controller
// checks: the proxy container and the TLS volume.
func trimPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	out := &corev1.Pod{TypeMeta: pod.TypeMeta, ObjectMeta: pod.ObjectMeta}
	out.ManagedFields = nil
	for _, c := range pod.Spec.InitContainers {
		if c.Name == inject.ContainerName {
			out.Spec.InitContainers = append(out.Spec.InitContainers, c)
		}
	}
	for _, c := range pod.Spec.Containers {
		if c.Name == inject.ContainerName {
			out.Spec.Containers = append(out.Spec.Containers, c)
		}
	}
	for _, v := range pod.Spec.Volumes {
		if v.Name == inject.TLSVolume {
			out.Spec.Volumes = append(out.Spec.Volumes, v)
		}
	}
	return out, nil
}

// trimCertificate keeps of a Certificate what Ensure compares and writes back: metadata and spec.
func trimCertificate(obj any) (any, error) {
	c, ok := obj.(*cmapi.Certificate)
	if !ok {
		return obj, nil
	}
	out := &cmapi.Certificate{TypeMeta: c.TypeMeta, ObjectMeta: c.ObjectMeta, Spec: c.Spec}
	out.ManagedFields = nil
	return out, nil
}
