package webhook

import (
	"encoding/json"
	"testing"

	evanjsonpatch "github.com/evanphx/json-patch/v5"
	corev1 "k8s.io/api/core/v1"
)

// TestPodPatch applies the patch built for each change to the Pod as it was and expects the Pod
// as it became: the shapes the render makes (added in front, added at the end, edited in place,
// annotations added and overwritten) and ones it does not make today but a patch must still get
// right (removals, keys that need JSON Pointer escaping).
func TestPodPatch(t *testing.T) {
	app := corev1.Container{Name: "app", Image: "app:1", Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: 9400}}}
	proxy := corev1.Container{Name: "rbac-proxy", Image: "proxy:1"}
	redirect := corev1.Container{Name: "rbac-proxy-redirect", Image: "proxy:1"}
	initC := corev1.Container{Name: "init", Image: "init:1"}
	vol := func(name string) corev1.Volume { return corev1.Volume{Name: name} }
	for _, tc := range []struct {
		name   string
		before corev1.Pod
		change func(*corev1.Pod)
		ops    int // how many operations the patch should need
	}{
		{"nothing changes", podOf(nil, []corev1.Container{app}, nil, nil), func(*corev1.Pod) {}, 0},
		{"annotations added to none", podOf(nil, []corev1.Container{app}, nil, nil), func(p *corev1.Pod) {
			p.Annotations = map[string]string{"rbac-proxy.io/status": "injected"}
		}, 1},
		{"annotations added and overwritten, keys escaped", podOf(map[string]string{"prometheus.io/port": "9400", "a~b": "1", "keep": "x"}, []corev1.Container{app}, nil, nil), func(p *corev1.Pod) {
			p.Annotations["prometheus.io/port"] = "8443"
			p.Annotations["prometheus.io/scheme"] = "https"
			p.Annotations["a~b"] = ""
		}, 3},
		{"annotation removed", podOf(map[string]string{"x/y": "1", "z": "2"}, []corev1.Container{app}, nil, nil), func(p *corev1.Pod) {
			delete(p.Annotations, "x/y")
		}, 1},
		{"app edited, proxy appended", podOf(nil, []corev1.Container{app}, nil, nil), func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports[0].Name = "app-metrics"
			p.Spec.Containers = append(p.Spec.Containers, proxy)
		}, 2},
		{"init containers to none", podOf(nil, []corev1.Container{app}, nil, nil), func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{redirect, proxy}
		}, 1},
		{"init containers around the old", podOf(nil, []corev1.Container{app}, []corev1.Container{initC}, nil), func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{redirect, initC, proxy}
		}, 2},
		{"volumes appended", podOf(nil, []corev1.Container{app}, nil, []corev1.Volume{vol("data")}), func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, vol("rbac-proxy-tls"), vol("rbac-proxy-token"))
		}, 2},
		{"list shortened", podOf(nil, []corev1.Container{app}, nil, []corev1.Volume{vol("a"), vol("b"), vol("c")}), func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{vol("a"), vol("x")}
		}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			original, err := json.Marshal(&tc.before)
			if err != nil {
				t.Fatal(err)
			}
			pod := tc.before.DeepCopy()
			before := recordBefore(pod)
			tc.change(pod)
			ops := before.patch(pod)
			if len(ops) != tc.ops {
				t.Errorf("%d operations, want %d: %v", len(ops), tc.ops, ops)
			}
			want, err := json.Marshal(pod)
			if err != nil {
				t.Fatal(err)
			}
			got := original
			if len(ops) > 0 {
				raw, err := json.Marshal(ops)
				if err != nil {
					t.Fatal(err)
				}
				patch, err := evanjsonpatch.DecodePatch(raw)
				if err != nil {
					t.Fatal(err)
				}
				if got, err = patch.Apply(original); err != nil {
					t.Fatalf("applying %s: %v", raw, err)
				}
			}
			if !jsonEqual(t, want, got) {
				t.Fatalf("patched Pod differs\n--- want\n%s\n--- got\n%s", want, got)
			}
		})
	}
}

func podOf(annotations map[string]string, containers, initContainers []corev1.Container, volumes []corev1.Volume) corev1.Pod {
	p := corev1.Pod{Spec: corev1.PodSpec{Containers: containers, InitContainers: initContainers, Volumes: volumes}}
	p.Name, p.Annotations = "p", annotations
	return p
}
