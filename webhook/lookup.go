package webhook

import (
	"context"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// workloadArgKinds are the kinds a command line may name, in kubectl's spellings: singular,
// plural and short, any case, optionally with the API group (deployments.apps).
var workloadArgKinds = map[string]schema.GroupKind{
	"pod": {Kind: "Pod"}, "pods": {Kind: "Pod"}, "po": {Kind: "Pod"},
	"deployment": kindDeployment.GroupKind(), "deployments": kindDeployment.GroupKind(), "deploy": kindDeployment.GroupKind(),
	"statefulset": kindStatefulSet.GroupKind(), "statefulsets": kindStatefulSet.GroupKind(), "sts": kindStatefulSet.GroupKind(),
	"daemonset": kindDaemonSet.GroupKind(), "daemonsets": kindDaemonSet.GroupKind(), "ds": kindDaemonSet.GroupKind(),
	"job": kindJob.GroupKind(), "jobs": kindJob.GroupKind(),
	"cronjob": kindCronJob.GroupKind(), "cronjobs": kindCronJob.GroupKind(), "cj": kindCronJob.GroupKind(),
}

// WorkloadArgKinds says which kinds ParseWorkloadArg takes, for usage and error messages.
const WorkloadArgKinds = "pod, deployment, statefulset, daemonset, job, cronjob (or their plurals, or po, deploy, sts, ds, cj)"

// ParseWorkloadArg reads a command line's POD or KIND/NAME as kubectl does: a bare name is a Pod.
func ParseWorkloadArg(arg string) (schema.GroupKind, string, error) {
	kindArg, name, ok := strings.Cut(arg, "/")
	if !ok {
		kindArg, name = "pod", arg
	}
	if name == "" || strings.Contains(name, "/") {
		return schema.GroupKind{}, "", fmt.Errorf("%q: want POD or KIND/NAME", arg)
	}
	k, group, _ := strings.Cut(strings.ToLower(kindArg), ".")
	gk, known := workloadArgKinds[k]
	if !known || group != "" && group != gk.Group {
		return schema.GroupKind{}, "", fmt.Errorf("%q: unknown kind %q; allowed: %s", arg, kindArg, WorkloadArgKinds)
	}
	return gk, name, nil
}

// Lookup reads the workload kind/name in namespace as the certificate controller sees it: a
// controller and its Pod template; for a Pod, the workload its verified controller chain leads
// to (the Pod itself when it has none).
func (v *WorkloadVerifier) Lookup(ctx context.Context, namespace string, kind schema.GroupKind, name string) (*StoredWorkload, error) {
	if kind == (schema.GroupKind{Kind: "Pod"}) {
		pod := &corev1.Pod{}
		if err := v.API.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, pod); err != nil {
			return nil, fmt.Errorf("reading Pod %s/%s: %w", namespace, name, err)
		}
		return v.Verify(ctx, pod)
	}
	w, _, err := v.get(ctx, namespace, kind, name)
	if errors.Is(err, errNotController) {
		return nil, fmt.Errorf("%s %s: %w", kind.Kind, name, err)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s %s/%s: %w", kind.Kind, namespace, name, err)
	}
	return w, nil
}
