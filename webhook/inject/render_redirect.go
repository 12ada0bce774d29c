package inject

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"
)

// redirectContainerName is the init container of redirect mode.
const redirectContainerName = "rbac-proxy-redirect"

// redirectCommand is the injector binary in the proxy's image.
const redirectCommand = "/rbac-proxy-injector"

// redirectContainer installs the nftables rules of redirect mode and exits. It runs as root
// because a non-root process does not get the capabilities a container adds (Kubernetes sets no
// ambient capabilities), with NET_ADMIN only, and changes nothing but the Pod's network namespace.
func redirectContainer(p *Policy) corev1.Container {
	return corev1.Container{
		Name:            redirectContainerName,
		Image:           p.Image,
		ImagePullPolicy: p.PullPolicy,
		Command:         []string{redirectCommand},
		Args: []string{
			"redirect",
			fmt.Sprintf("--port=%d", p.Target.Number),
			fmt.Sprintf("--to=%d", p.ProxyPort),
			fmt.Sprintf("--exclude-uid=%d", proxyUID),
		},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("32Mi")},
		},
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		SecurityContext: &corev1.SecurityContext{
			RunAsNonRoot:             ptr.To(false),
			RunAsUser:                ptr.To[int64](0),
			RunAsGroup:               ptr.To[int64](0),
			AllowPrivilegeEscalation: ptr.To(false),
			ReadOnlyRootFilesystem:   ptr.To(true),
			Capabilities:             &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}, Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
	}
}
