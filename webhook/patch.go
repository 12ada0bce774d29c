package webhook

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
)

// podBefore is what the render may change of a Pod, as it was before: its labels, annotations,
// app containers, init containers and volumes. Nothing else of a Pod is touched by inject.Render;
// the mutation and fuzz tests apply every patch and compare with Render's output, so a render
// that starts changing another field fails them.
//
// The patch is built from these typed fields rather than by diffing the whole Pod as JSON
// (admission.PatchResponseFromRaw): a generic diff decodes both documents into maps, and in one
// bench-webhook run it made the handler's p50 2-2.7 times as long (1.2-1.4 over HTTPS), with
// 736 allocations instead of 233 (docs/webhook.md). The request's Pod is the API server's encoding of its typed
// object, so replacing an edited container whole loses nothing; inject -f, whose manifests may
// hold fields the typed structs do not know, diffs field by field instead.
type podBefore struct {
	labels         map[string]string
	annotations    map[string]string
	containers     []corev1.Container // deep copies: the render edits app containers in place
	initContainers []corev1.Container // the render only adds to these two
	volumes        []corev1.Volume
}

func recordBefore(pod *corev1.Pod) podBefore {
	b := podBefore{
		labels:         maps.Clone(pod.Labels),
		annotations:    maps.Clone(pod.Annotations),
		initContainers: slices.Clip(pod.Spec.InitContainers),
		volumes:        slices.Clip(pod.Spec.Volumes),
	}
	b.containers = make([]corev1.Container, len(pod.Spec.Containers))
	for i := range pod.Spec.Containers {
		pod.Spec.Containers[i].DeepCopyInto(&b.containers[i])
	}
	return b
}

// patch returns the JSON patch that turns the Pod as it was into after.
func (b podBefore) patch(after *corev1.Pod) []jsonpatch.JsonPatchOperation {
	ops := mapOps(nil, "/metadata/labels", b.labels, after.Labels)
	ops = mapOps(ops, "/metadata/annotations", b.annotations, after.Annotations)
	ops = sliceOps(ops, "/spec/containers", b.containers, after.Spec.Containers)
	ops = sliceOps(ops, "/spec/initContainers", b.initContainers, after.Spec.InitContainers)
	ops = sliceOps(ops, "/spec/volumes", b.volumes, after.Spec.Volumes)
	return ops
}

// mapOps patches a string map (labels or annotations) at path.
func mapOps(ops []jsonpatch.JsonPatchOperation, path string, before, after map[string]string) []jsonpatch.JsonPatchOperation {
	if len(before) == 0 {
		if len(after) > 0 {
			ops = append(ops, jsonpatch.NewOperation("add", path, after))
		}
		return ops
	}
	keys := make([]string, 0, len(after))
	for k, v := range after {
		if old, ok := before[k]; !ok || old != v {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys) // a stable patch for the same change
	for _, k := range keys {
		// "add" on an existing member replaces it (RFC 6902, 4.1).
		ops = append(ops, jsonpatch.NewOperation("add", path+"/"+escapePointer(k), after[k]))
	}
	var removed []string
	for k := range before {
		if _, ok := after[k]; !ok {
			removed = append(removed, k)
		}
	}
	slices.Sort(removed)
	for _, k := range removed {
		ops = append(ops, jsonpatch.NewOperation("remove", path+"/"+escapePointer(k), nil))
	}
	return ops
}

// sliceOps patches a list. When the old elements are all still there, in order and unchanged,
// the new ones are inserted around them (the redirect init container goes first, the proxy
// last); otherwise changed elements are replaced in place.
func sliceOps[T any](ops []jsonpatch.JsonPatchOperation, path string, before, after []T) []jsonpatch.JsonPatchOperation {
	if len(before) == 0 {
		if len(after) > 0 {
			ops = append(ops, jsonpatch.NewOperation("add", path, after))
		}
		return ops
	}
	for k := 0; k+len(before) <= len(after); k++ {
		if !slices.EqualFunc(before, after[k:k+len(before)], semanticEqual[T]) {
			continue
		}
		for i := 0; i < k; i++ {
			ops = append(ops, jsonpatch.NewOperation("add", path+"/"+strconv.Itoa(i), &after[i]))
		}
		for i := k + len(before); i < len(after); i++ {
			ops = append(ops, jsonpatch.NewOperation("add", path+"/-", &after[i]))
		}
		return ops
	}
	common := min(len(before), len(after))
	for i := 0; i < common; i++ {
		if !semanticEqual(before[i], after[i]) {
			ops = append(ops, jsonpatch.NewOperation("replace", path+"/"+strconv.Itoa(i), &after[i]))
		}
	}
	for i := common; i < len(after); i++ {
		ops = append(ops, jsonpatch.NewOperation("add", path+"/-", &after[i]))
	}
	for i := len(before) - 1; i >= common; i-- {
		ops = append(ops, jsonpatch.NewOperation("remove", path+"/"+strconv.Itoa(i), nil))
	}
	return ops
}

func semanticEqual[T any](a, b T) bool { return equality.Semantic.DeepEqual(a, b) }

// escapePointer escapes a JSON Pointer reference token (RFC 6901): annotation keys hold "/".
func escapePointer(s string) string {
	if !strings.ContainsAny(s, "~/") {
		return s
	}
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}
