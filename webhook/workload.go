package webhook

import (
	"context"
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// A Pod's controller chain, as the injector can verify it: the direct controllers of a Pod, and
// the controllers above them. Anything else gets no Certificate, so the webhook denies it.
var (
	kindReplicaSet  = appsv1.SchemeGroupVersion.WithKind("ReplicaSet")
	kindDeployment  = appsv1.SchemeGroupVersion.WithKind("Deployment")
	kindDaemonSet   = appsv1.SchemeGroupVersion.WithKind("DaemonSet")
	kindStatefulSet = appsv1.SchemeGroupVersion.WithKind("StatefulSet")
	kindJob         = batchv1.SchemeGroupVersion.WithKind("Job")
	kindCronJob     = batchv1.SchemeGroupVersion.WithKind("CronJob")
)

// podControllers are the kinds that control Pods directly; parents are the kinds that may
// control each of them in turn.
var podControllers = map[schema.GroupKind][]schema.GroupVersionKind{
	kindReplicaSet.GroupKind():  {kindDeployment},
	kindDaemonSet.GroupKind():   nil,
	kindStatefulSet.GroupKind(): nil,
	kindJob.GroupKind():         {kindCronJob},
}

const verifiableControllers = "none (a bare Pod), ReplicaSet (of a Deployment or alone), DaemonSet, StatefulSet, Job (of a CronJob or alone)"

// checkControllerKind says what is wrong with a Pod's controller reference for the injector,
// empty when it names a controller the certificate controller can verify.
func checkControllerKind(ref *metav1.OwnerReference) string {
	if ref == nil {
		return ""
	}
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return "the Pod's controller has a bad apiVersion " + ref.APIVersion
	}
	if _, ok := podControllers[gv.WithKind(ref.Kind).GroupKind()]; !ok {
		return "the Pod's controller " + ref.Kind + "." + gv.Group + " " + ref.Name + " is not one the injector can verify"
	}
	return ""
}

// workloadKinds are the workloads a Certificate may be made for: the Pod itself, its direct
// controller, or the controller of that.
var workloadKinds = map[schema.GroupKind]bool{
	{Kind: "Pod"}:               true,
	kindReplicaSet.GroupKind():  true,
	kindDeployment.GroupKind():  true,
	kindDaemonSet.GroupKind():   true,
	kindStatefulSet.GroupKind(): true,
	kindJob.GroupKind():         true,
	kindCronJob.GroupKind():     true,
}

// checkVerifiable says why the certificate controller would refuse a Pod admitted with workload
// w, as far as admission can tell; empty when it would not.
func checkVerifiable(pod *corev1.Pod, w inject.Workload) string {
	if problem := checkControllerKind(metav1.GetControllerOfNoCopy(pod)); problem != "" {
		return problem
	}
	gv, err := schema.ParseGroupVersion(w.APIVersion)
	if err != nil || !workloadKinds[gv.WithKind(w.Kind).GroupKind()] {
		return "the Pod's workload " + w.Kind + " " + w.Name + " is not one the injector can verify"
	}
	if w.Kind == "Pod" && pod.Name == "" {
		// Its name is generated after admission: the Secret it mounts must be named before, and
		// Pods of one generateName would share one Certificate that the first to go takes along.
		return "a Pod without a controller needs a name of its own (it has generateName " + pod.GenerateName + ")"
	}
	return ""
}

// PolicyFor is the Pod's policy for admission and inject -f alike: inject's, for a Pod whose proxy
// the certificate controller will serve.
func PolicyFor(pod *corev1.Pod, in inject.PolicyInput) (*inject.Policy, error) {
	p, err := inject.NewPolicy(pod, in)
	if err != nil {
		return nil, err
	}
	if !p.WaitsOnController() {
		return p, nil
	}
	// The certificate controller acts only for Pods it can verify: one it would refuse gets no
	// Certificate or CA ConfigMap, and its proxy would never start.
	if problem := checkVerifiable(pod, in.Workload); problem != "" {
		return nil, &inject.PolicyError{Errors: field.ErrorList{inject.UnsetAnnotation(inject.AnnotationTLSSecret,
			problem+", so the injector would make no Certificate or CA ConfigMap and the proxy would never start",
			"an existing Secret in "+inject.AnnotationTLSSecret+" (and no client-ca scrapers), or a Pod whose controller is "+verifiableControllers)}}
	}
	return p, nil
}

// StoredWorkload is a Pod's workload as the API server stored it: the object that owns the
// Certificate, and the Pod template its TLS policy is read from.
type StoredWorkload struct {
	inject.Workload
	// Template is the workload's Pod template; for a bare Pod, the Pod's own metadata and spec.
	Template *corev1.PodTemplateSpec
}

// RefusedError says why a Pod gets no Certificate: its claims do not match what the API server
// stored. Retrying does not help until something changes.
type RefusedError struct{ Reason string }

func (e *RefusedError) Error() string { return e.Reason }

func refused(format string, args ...any) error {
	return &RefusedError{Reason: fmt.Sprintf(format, args...)}
}

// IsRefused reports whether err is a RefusedError.
func IsRefused(err error) bool {
	var r *RefusedError
	return errors.As(err, &r)
}

// WorkloadVerifier finds a stored Pod's workload by reading every controller of its chain from
// the API server, checking each UID: a Pod's ownerReferences are its author's claim, the objects
// they name are not.
type WorkloadVerifier struct {
	// API reads live objects (a client without cache).
	API client.Reader
}

// Verify returns the Pod's workload and the template its Certificate is made from.
func (v *WorkloadVerifier) Verify(ctx context.Context, pod *corev1.Pod) (*StoredWorkload, error) {
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil {
		return &StoredWorkload{
			Workload: inject.Workload{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID},
			Template: &corev1.PodTemplateSpec{ObjectMeta: pod.ObjectMeta, Spec: pod.Spec},
		}, nil
	}
	if problem := checkControllerKind(ref); problem != "" {
		return nil, refused("%s; allowed controllers: %s", problem, verifiableControllers)
	}
	gv, _ := schema.ParseGroupVersion(ref.APIVersion)
	w, owner, err := v.read(ctx, pod.Namespace, gv.WithKind(ref.Kind).GroupKind(), *ref)
	if err != nil {
		return nil, err
	}
	parentRef := metav1.GetControllerOfNoCopy(owner)
	if parentRef == nil {
		return w, nil
	}
	pgv, err := schema.ParseGroupVersion(parentRef.APIVersion)
	if err != nil {
		return nil, refused("%s %s has a controller with a bad apiVersion %s", ref.Kind, ref.Name, parentRef.APIVersion)
	}
	parentKind := pgv.WithKind(parentRef.Kind).GroupKind()
	for _, allowed := range podControllers[gv.WithKind(ref.Kind).GroupKind()] {
		if allowed.GroupKind() == parentKind {
			parent, _, err := v.read(ctx, pod.Namespace, parentKind, *parentRef)
			return parent, err
		}
	}
	return nil, refused("%s %s is controlled by %s %s, which the injector cannot verify; allowed controllers: %s", ref.Kind, ref.Name, parentRef.Kind, parentRef.Name, verifiableControllers)
}

// read gets the object ref names and checks that it is the one ref means (same UID).
func (v *WorkloadVerifier) read(ctx context.Context, namespace string, kind schema.GroupKind, ref metav1.OwnerReference) (*StoredWorkload, metav1.Object, error) {
	w, obj, err := v.get(ctx, namespace, kind, ref.Name)
	switch {
	case errors.Is(err, errNotController):
		return nil, nil, refused("%s %s is not a controller the injector can verify", ref.Kind, ref.Name)
	case apierrors.IsNotFound(err):
		return nil, nil, refused("%s %s/%s, named as a controller, does not exist", ref.Kind, namespace, ref.Name)
	case err != nil:
		return nil, nil, fmt.Errorf("reading %s %s/%s: %w", ref.Kind, namespace, ref.Name, err)
	}
	if obj.GetUID() != ref.UID {
		return nil, nil, refused("%s %s/%s has UID %s, not the %s its reference names", ref.Kind, namespace, ref.Name, obj.GetUID(), ref.UID)
	}
	if obj.GetDeletionTimestamp() != nil {
		return nil, nil, refused("%s %s/%s is being deleted", ref.Kind, namespace, ref.Name)
	}
	return w, obj, nil
}

// errNotController: get was asked for a kind that is no Pod controller the injector knows.
var errNotController = errors.New("not a Pod controller the injector can verify")

// get reads the controller kind/name and its Pod template.
func (v *WorkloadVerifier) get(ctx context.Context, namespace string, kind schema.GroupKind, name string) (*StoredWorkload, client.Object, error) {
	var (
		obj      client.Object
		template func() *corev1.PodTemplateSpec
		gvk      schema.GroupVersionKind
	)
	switch kind {
	case kindReplicaSet.GroupKind():
		o := &appsv1.ReplicaSet{}
		obj, template, gvk = o, func() *corev1.PodTemplateSpec { return &o.Spec.Template }, kindReplicaSet
	case kindDeployment.GroupKind():
		o := &appsv1.Deployment{}
		obj, template, gvk = o, func() *corev1.PodTemplateSpec { return &o.Spec.Template }, kindDeployment
	case kindDaemonSet.GroupKind():
		o := &appsv1.DaemonSet{}
		obj, template, gvk = o, func() *corev1.PodTemplateSpec { return &o.Spec.Template }, kindDaemonSet
	case kindStatefulSet.GroupKind():
		o := &appsv1.StatefulSet{}
		obj, template, gvk = o, func() *corev1.PodTemplateSpec { return &o.Spec.Template }, kindStatefulSet
	case kindJob.GroupKind():
		o := &batchv1.Job{}
		obj, template, gvk = o, func() *corev1.PodTemplateSpec { return &o.Spec.Template }, kindJob
	case kindCronJob.GroupKind():
		o := &batchv1.CronJob{}
		obj, template, gvk = o, func() *corev1.PodTemplateSpec { return &o.Spec.JobTemplate.Spec.Template }, kindCronJob
	default:
		return nil, nil, errNotController
	}
	if err := v.API.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, obj); err != nil {
		return nil, nil, err
	}
	w := inject.Workload{APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind, Name: obj.GetName(), UID: obj.GetUID()}
	return &StoredWorkload{Workload: w, Template: template()}, obj, nil
}
