package webhook

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// walkedKind reports whether ref is an intermediate controller (ReplicaSet, Job) whose own
// controller, if any, is the workload.
func walkedKind(ref metav1.OwnerReference) (schema.GroupVersionKind, bool) {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return schema.GroupVersionKind{}, false
	}
	switch {
	case gv.Group == "apps" && ref.Kind == "ReplicaSet", gv.Group == "batch" && ref.Kind == "Job":
		return gv.WithKind(ref.Kind), true
	}
	return schema.GroupVersionKind{}, false
}

// OwnerResolver finds a Pod's workload: its controller, and the controller of that controller for
// a ReplicaSet (→ Deployment) or a Job (→ CronJob). Intermediate objects are read as metadata from
// Cache (an informer cache); API, when set, is asked only on a cache miss, e.g. for a ReplicaSet
// created a moment ago.
type OwnerResolver struct {
	Cache client.Reader
	API   client.Reader
}

// Resolve returns the workload of a Pod admitted in namespace.
func (r *OwnerResolver) Resolve(ctx context.Context, pod *corev1.Pod, namespace string) (inject.Workload, error) {
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil {
		return inject.PodWorkload(pod), nil
	}
	w := inject.Workload{APIVersion: ref.APIVersion, Kind: ref.Kind, Name: ref.Name, UID: ref.UID}
	gvk, walk := walkedKind(*ref)
	if !walk {
		return w, nil
	}
	meta, err := r.metadata(ctx, gvk, types.NamespacedName{Namespace: namespace, Name: ref.Name})
	if apierrors.IsNotFound(err) {
		return w, nil
	}
	if err != nil {
		return inject.Workload{}, fmt.Errorf("reading %s %s/%s, owner of the Pod: %w", ref.Kind, namespace, ref.Name, err)
	}
	if meta.UID != ref.UID {
		// A different object by the same name: do not trust its owners.
		return w, nil
	}
	if parent := metav1.GetControllerOfNoCopy(meta); parent != nil {
		return inject.Workload{APIVersion: parent.APIVersion, Kind: parent.Kind, Name: parent.Name, UID: parent.UID}, nil
	}
	return w, nil
}

func (r *OwnerResolver) metadata(ctx context.Context, gvk schema.GroupVersionKind, key types.NamespacedName) (*metav1.PartialObjectMetadata, error) {
	obj := &metav1.PartialObjectMetadata{}
	obj.SetGroupVersionKind(gvk)
	err := r.Cache.Get(ctx, key, obj)
	if err == nil || r.API == nil || !apierrors.IsNotFound(err) {
		return obj, err
	}
	obj = &metav1.PartialObjectMetadata{}
	obj.SetGroupVersionKind(gvk)
	return obj, r.API.Get(ctx, key, obj)
}
