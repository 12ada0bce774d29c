package inject

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Workload is what owns the proxy's Certificate: the Deployment, StatefulSet, DaemonSet, Job,
// CronJob (or other controller) behind a Pod, or the Pod itself.
type Workload struct {
	APIVersion string
	Kind       string
	Name       string
	// UID is empty for a Pod that is its own workload: at admission a Pod has no UID yet.
	UID types.UID
}

// OwnerReference returns the reference that makes the workload the Certificate's owner, nil when
// the workload has no UID.
func (w Workload) OwnerReference() *metav1.OwnerReference {
	if w.UID == "" {
		return nil
	}
	return &metav1.OwnerReference{APIVersion: w.APIVersion, Kind: w.Kind, Name: w.Name, UID: w.UID}
}

// PodWorkload is the Pod as its own workload; a Pod created from generateName (offline, or
// with its own Secret) is named after it.
func PodWorkload(pod *corev1.Pod) Workload {
	name := pod.Name
	if name == "" {
		name = strings.TrimRight(pod.GenerateName, "-.")
	}
	return Workload{APIVersion: "v1", Kind: "Pod", Name: name, UID: pod.UID}
}
