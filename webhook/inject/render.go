package inject

import (
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// ContainerName is the proxy container's name.
const ContainerName = "rbac-proxy"

// Names of the volumes the render adds.
const (
	// TLSVolume is the Secret volume the proxy serves from; the certificate controller reads it.
	TLSVolume      = "rbac-proxy-tls"
	volumeClientCA = "rbac-proxy-client-ca"
	volumeToken    = "rbac-proxy-token"
)

// proxyUID is the proxy's user and group: non-root, matching distroless' nonroot user.
const proxyUID = 65532

// tokenExpirationSeconds matches the API server's own projected tokens.
const tokenExpirationSeconds = 3607

// Render injects the proxy into out as the policy, made by NewPolicy from this same Pod, says:
// the proxy container, its volumes, the app's ports and probes, the status label and annotation.
// It reads nothing but its arguments and changes nothing but out; callers that need the Pod as
// it was keep a copy (the admission handler has the request's JSON).
func Render(out *corev1.Pod, p *Policy) {
	spec := &out.Spec

	rewriteProbes(spec, p)
	var moved *corev1.ContainerPort
	for i := range spec.Containers {
		c := &spec.Containers[i]
		if c.Name != p.Target.Container {
			continue
		}
		switch p.Mode {
		case PortModeTakeover:
			moved = takeoverAppContainer(c, p)
		case PortModeRedirect:
			// The app keeps its port, name and all: connections to it are redirected.
		default:
			rewireAppContainer(c, p.Target)
		}
	}

	proxy := proxyContainer(p)
	if moved != nil {
		// The proxy takes the app's port entry as it was (number, name, host port), so Services,
		// ServiceMonitors and hostNetwork clients reach the proxy.
		proxy.Ports[0] = *moved
		proxy.Ports[0].Protocol = corev1.ProtocolTCP
		if proxy.Ports[0].Name == "" {
			proxy.Ports[0].Name = p.Target.ProxyPortName
		}
	}
	proxy.VolumeMounts = append(proxy.VolumeMounts, corev1.VolumeMount{Name: TLSVolume, MountPath: tlsMountPath, ReadOnly: true})
	spec.Volumes = append(spec.Volumes, corev1.Volume{
		Name:         TLSVolume,
		VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: p.TLS.SecretName}},
	})
	if ca := p.ClientCA; ca != nil {
		spec.Volumes = append(spec.Volumes, clientCAVolume(ca))
		proxy.VolumeMounts = append(proxy.VolumeMounts, corev1.VolumeMount{Name: volumeClientCA, MountPath: clientCAMountPath, ReadOnly: true})
	}
	if name := serviceAccountTokenVolume(spec); name != "" {
		proxy.VolumeMounts = append(proxy.VolumeMounts, corev1.VolumeMount{Name: name, MountPath: tokenMountPath, ReadOnly: true})
	} else {
		spec.Volumes = append(spec.Volumes, tokenVolume())
		proxy.VolumeMounts = append(proxy.VolumeMounts, corev1.VolumeMount{Name: volumeToken, MountPath: tokenMountPath, ReadOnly: true})
	}

	if p.Mode == PortModeRedirect {
		// First of all init containers: the rules are in place before anything else runs.
		spec.InitContainers = append([]corev1.Container{redirectContainer(p)}, spec.InitContainers...)
	}

	switch p.SidecarMode {
	case SidecarContainer:
		spec.Containers = append(spec.Containers, proxy)
	default:
		proxy.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
		spec.InitContainers = append(spec.InitContainers, proxy)
	}

	if out.Annotations == nil {
		out.Annotations = map[string]string{}
	}
	if v, ok := out.Annotations[PrometheusPortAnnotation]; ok && pointsAtTarget(v, p.Target) && (p.Mode == PortModeTakeover || p.Mode == PortModeRedirect) {
		out.Annotations[PrometheusSchemeAnnotation] = SchemeHTTPS
	} else if ok && pointsAtTarget(v, p.Target) {
		out.Annotations[PrometheusPortAnnotation] = strconv.Itoa(int(p.ProxyPort))
		out.Annotations[PrometheusSchemeAnnotation] = SchemeHTTPS
	}
	out.Annotations[AnnotationStatus] = StatusInjected
	// The label lets the certificate controller watch injected Pods alone.
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	out.Labels[LabelStatus] = StatusInjected
}

func pointsAtTarget(v string, t PortTarget) bool {
	return v == strconv.Itoa(int(t.Number)) || (t.Name != "" && v == t.Name)
}

func proxyContainer(p *Policy) corev1.Container {
	probe := func(path string, period int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path:   path,
				Port:   intstr.FromInt32(p.EndpointsPort),
				Scheme: corev1.URISchemeHTTPS,
			}},
			PeriodSeconds:    period,
			TimeoutSeconds:   2,
			FailureThreshold: 3,
		}
	}
	return corev1.Container{
		Name:            ContainerName,
		Image:           p.Image,
		ImagePullPolicy: p.PullPolicy,
		Args:            p.Args,
		Ports: []corev1.ContainerPort{{
			Name:          p.Target.ProxyPortName,
			ContainerPort: p.ProxyPort,
			Protocol:      corev1.ProtocolTCP,
		}},
		Resources:                *p.Resources.DeepCopy(),
		LivenessProbe:            probe("/healthz", 10),
		ReadinessProbe:           probe("/readyz", 5),
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		SecurityContext: &corev1.SecurityContext{
			RunAsNonRoot:             ptr.To(true),
			RunAsUser:                ptr.To[int64](proxyUID),
			RunAsGroup:               ptr.To[int64](proxyUID),
			AllowPrivilegeEscalation: ptr.To(false),
			ReadOnlyRootFilesystem:   ptr.To(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
	}
}

func clientCAVolume(ca *ClientCA) corev1.Volume {
	items := []corev1.KeyToPath{{Key: ca.Key, Path: CAKey}}
	v := corev1.Volume{Name: volumeClientCA}
	if ca.Source == ClientCASecret {
		v.Secret = &corev1.SecretVolumeSource{SecretName: ca.Name, Items: items}
	} else {
		v.ConfigMap = &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: ca.Name}, Items: items}
	}
	return v
}

// serviceAccountTokenVolume returns the volume an app container mounts the ServiceAccount token
// from (the API server's kube-api-access-* volume), or "" when the Pod has none: the Pod (or its
// ServiceAccount) turned automounting off, or the API server has not mounted it yet (inject -f).
func serviceAccountTokenVolume(spec *corev1.PodSpec) string {
	for _, cs := range [][]corev1.Container{spec.Containers, spec.InitContainers} {
		for _, c := range cs {
			for _, m := range c.VolumeMounts {
				if m.MountPath == tokenMountPath {
					return m.Name
				}
			}
		}
	}
	return ""
}

// tokenVolume is the proxy's own projected ServiceAccount token, CA and namespace, laid out like
// the API server's: the proxy needs them to create TokenReviews and SubjectAccessReviews. When
// the API server later mounts its own token, it leaves the proxy's mount alone.
func tokenVolume() corev1.Volume {
	return corev1.Volume{
		Name: volumeToken,
		VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources: []corev1.VolumeProjection{
				{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr.To[int64](tokenExpirationSeconds)}},
				{ConfigMap: &corev1.ConfigMapProjection{
					LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
					Items:                []corev1.KeyToPath{{Key: CAKey, Path: CAKey}},
				}},
				{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{
					Path:     "namespace",
					FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"},
				}}}},
			},
		}},
	}
}
