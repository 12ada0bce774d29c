package check

import (
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// workload is a Deployment, StatefulSet, DaemonSet, Job, CronJob (or a ReplicaSet or other
// controller with no workload above it, or a bare Pod) with its Pods.
type workload struct {
	ref        ObjectRef
	apiVersion string
	uid        types.UID
	// template is the workload's Pod template; nil when the workload's object could not be read
	// (or is not a kind check knows): then its Pods stand for it.
	template *corev1.PodTemplateSpec
	// templatePath is where the template is in the object, for fixes ("spec.template").
	templatePath string
	pods         []*corev1.Pod
}

// injectWorkload is the workload as the webhook's policy names it (OwnerResolver's answer).
func (w *workload) injectWorkload() inject.Workload {
	return inject.Workload{APIVersion: w.apiVersion, Kind: w.ref.Kind, Name: w.ref.Name, UID: w.uid}
}

// templated is a workload object's template, as read.
type templated struct {
	namespace, kind, apiVersion, name, path string
	uid                                     types.UID
	owner                                   *metav1.OwnerReference
	template                                *corev1.PodTemplateSpec
}

// templates lists the Pod templates of every workload object read.
func templates(s *Snapshot) []templated {
	var out []templated
	add := func(m *metav1.ObjectMeta, kind, apiVersion, path string, t *corev1.PodTemplateSpec) {
		out = append(out, templated{namespace: m.Namespace, kind: kind, apiVersion: apiVersion, name: m.Name, path: path, uid: m.UID, owner: metav1.GetControllerOfNoCopy(m), template: t})
	}
	for i := range s.Deployments {
		o := &s.Deployments[i]
		add(&o.ObjectMeta, "Deployment", "apps/v1", "spec.template", &o.Spec.Template)
	}
	for i := range s.StatefulSets {
		o := &s.StatefulSets[i]
		add(&o.ObjectMeta, "StatefulSet", "apps/v1", "spec.template", &o.Spec.Template)
	}
	for i := range s.DaemonSets {
		o := &s.DaemonSets[i]
		add(&o.ObjectMeta, "DaemonSet", "apps/v1", "spec.template", &o.Spec.Template)
	}
	for i := range s.ReplicaSets {
		o := &s.ReplicaSets[i]
		add(&o.ObjectMeta, "ReplicaSet", "apps/v1", "spec.template", &o.Spec.Template)
	}
	for i := range s.Jobs {
		o := &s.Jobs[i]
		add(&o.ObjectMeta, "Job", "batch/v1", "spec.template", &o.Spec.Template)
	}
	for i := range s.CronJobs {
		o := &s.CronJobs[i]
		add(&o.ObjectMeta, "CronJob", "batch/v1", "spec.jobTemplate.spec.template", &o.Spec.JobTemplate.Spec.Template)
	}
	return out
}

// intermediate kinds are those whose own controller, when there is one, is the workload (as
// webhook.OwnerResolver walks them): a Deployment's ReplicaSets, a CronJob's Jobs.
var intermediate = map[string]string{"ReplicaSet": "Deployment", "Job": "CronJob"}

// workloads groups the Pods by workload and adds the workloads without Pods, sorted by
// namespace, kind, name. A Pod's owner is trusted only when the object of that name has the UID
// the reference names, as the webhook's OwnerResolver does.
func workloads(s *Snapshot) []*workload {
	type key struct{ namespace, kind, name string }
	objects := map[key]templated{}
	all := templates(s)
	for _, t := range all {
		objects[key{t.namespace, t.kind, t.name}] = t
	}
	byKey := map[key]*workload{}
	var out []*workload
	get := func(namespace string, t templated, ref *metav1.OwnerReference) *workload {
		k := key{namespace, t.kind, t.name}
		if t.template == nil {
			k = key{namespace, ref.Kind, ref.Name}
		}
		if w := byKey[k]; w != nil {
			return w
		}
		w := &workload{ref: ObjectRef{Kind: k.kind, Namespace: namespace, Name: k.name}}
		if t.template != nil {
			w.apiVersion, w.uid, w.template, w.templatePath = t.apiVersion, t.uid, t.template, t.path
		} else {
			w.apiVersion, w.uid = ref.APIVersion, ref.UID
		}
		byKey[k] = w
		out = append(out, w)
		return w
	}
	// resolve finds the workload object a controller reference leads to.
	resolve := func(namespace string, ref *metav1.OwnerReference) *workload {
		t, ok := objects[key{namespace, ref.Kind, ref.Name}]
		if !ok || t.uid != ref.UID {
			return get(namespace, templated{}, ref)
		}
		if parentKind, walk := intermediate[ref.Kind]; walk && t.owner != nil && t.owner.Kind == parentKind {
			if p, ok := objects[key{namespace, parentKind, t.owner.Name}]; ok && p.uid == t.owner.UID {
				return get(namespace, p, nil)
			}
			return get(namespace, templated{}, t.owner)
		}
		return get(namespace, t, nil)
	}
	for i := range s.Pods {
		pod := &s.Pods[i]
		if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			// A finished Pod (a Job's) runs nothing: protected or not, nothing listens.
			continue
		}
		ref := metav1.GetControllerOfNoCopy(pod)
		if ref == nil {
			w := &workload{ref: ObjectRef{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name}, apiVersion: "v1", uid: pod.UID, pods: []*corev1.Pod{pod}}
			out = append(out, w)
			continue
		}
		w := resolve(pod.Namespace, ref)
		w.pods = append(w.pods, pod)
	}
	// Workloads without Pods: a Deployment scaled to zero or whose Pods are all denied, a
	// CronJob between runs. A Deployment's ReplicaSets and a CronJob's Jobs are not workloads.
	for _, t := range all {
		k := key{t.namespace, t.kind, t.name}
		if byKey[k] != nil {
			continue
		}
		if parentKind, walk := intermediate[t.kind]; walk {
			if t.owner != nil && t.owner.Kind == parentKind || t.kind == "ReplicaSet" {
				continue
			}
		}
		get(t.namespace, t, nil)
	}
	sort.Slice(out, func(i, j int) bool { return lessRef(out[i].ref, out[j].ref) })
	for _, w := range out {
		sort.Slice(w.pods, func(i, j int) bool { return w.pods[i].Name < w.pods[j].Name })
	}
	return out
}

func lessRef(a, b ObjectRef) bool {
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	if a.Kind != b.Kind {
		return a.Kind < b.Kind
	}
	return a.Name < b.Name
}

// WorkloadOf returns the workload that ref is, or that the Pod ref names belongs to.
func (s *Snapshot) WorkloadOf(ref ObjectRef) (ObjectRef, bool) {
	for _, w := range workloads(s) {
		if w.ref == ref {
			return w.ref, true
		}
		for _, p := range w.pods {
			if ref.Kind == "Pod" && p.Namespace == ref.Namespace && p.Name == ref.Name {
				return w.ref, true
			}
		}
	}
	return ObjectRef{}, false
}
