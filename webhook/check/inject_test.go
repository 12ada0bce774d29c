package check

import (
	"slices"
	"strings"
	"testing"

	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// TestInjection: each workload's state, what decided it, and the NotInjected and InvalidPolicy
// findings, over hand-built snapshots.
func TestInjection(t *testing.T) {
	d := testDefaults(t)
	type want struct {
		state     InjectionState
		decidedBy string
		mode      string
		findings  []string
		fix       string
		unchecked []Code
		// reason, when set, is in the workload's reason.
		reason string
	}
	for _, tc := range []struct {
		name  string
		build func() *Snapshot
		want  want
	}{{
		name: "namespace label, Pod created before it",
		build: func() *Snapshot {
			dep, rs := deployment("dcgm", appTemplate(nil, nil))
			return snapshotOf(namespace(enabledNS), dep, rs, podOf(t, d, dep, rs, "a", false, ""))
		},
		want: want{state: StateNotInjected, decidedBy: "Namespace gpu label rbac-proxy.io/inject=enabled", mode: "rename",
			findings: []string{"NotInjected Deployment/dcgm"}, fix: "kubectl rollout restart deployment/dcgm -n gpu"},
	}, {
		name: "opted in and injected",
		build: func() *Snapshot {
			dep, rs := deployment("dcgm", appTemplate(nil, optInAnnotation))
			return snapshotOf(namespace(nil), dep, rs, podOf(t, d, dep, rs, "a", true, ""), certificate("dcgm", cmmeta.ConditionTrue, "Ready"))
		},
		want: want{state: StateInjected, decidedBy: "Deployment dcgm template annotation rbac-proxy.io/inject=true", mode: "rename", findings: []string{}},
	}, {
		name: "one of two Pods injected",
		build: func() *Snapshot {
			dep, rs := deployment("dcgm", appTemplate(map[string]string{inject.LabelInject: "true"}, nil))
			return snapshotOf(namespace(nil), dep, rs, podOf(t, d, dep, rs, "a", true, ""), podOf(t, d, dep, rs, "b", false, ""), certificate("dcgm", cmmeta.ConditionTrue, "Ready"))
		},
		want: want{state: StateNotInjected, decidedBy: "Deployment dcgm template label rbac-proxy.io/inject=true", mode: "rename",
			findings: []string{"NotInjected Deployment/dcgm"}, fix: "kubectl rollout restart deployment/dcgm -n gpu"},
	}, {
		name: "nothing asks",
		build: func() *Snapshot {
			dep, rs := deployment("app", appTemplate(nil, nil))
			return snapshotOf(namespace(nil), dep, rs, podOf(t, d, dep, rs, "a", false, ""))
		},
		want: want{state: StateSkipped, findings: []string{"UnprotectedMetricsPort Deployment/app"}},
	}, {
		name: "opted out in an enabled namespace",
		build: func() *Snapshot {
			dep, rs := deployment("app", appTemplate(nil, map[string]string{inject.AnnotationInject: "false"}))
			return snapshotOf(namespace(enabledNS), dep, rs, podOf(t, d, dep, rs, "a", false, ""))
		},
		want: want{state: StateSkipped, decidedBy: "Deployment app template annotation rbac-proxy.io/inject=false", findings: []string{}},
	}, {
		name: "annotations the webhook refuses",
		build: func() *Snapshot {
			dep, rs := deployment("dcgm", appTemplate(nil, map[string]string{inject.AnnotationInject: "true", inject.AnnotationPort: "nope"}))
			return snapshotOf(namespace(nil), dep, rs)
		},
		want: want{state: StateInvalid, decidedBy: "Deployment dcgm template annotation rbac-proxy.io/inject=true",
			findings: []string{"InvalidPolicy Deployment/dcgm"}, fix: "change spec.template.metadata.annotations[rbac-proxy.io/port]"},
	}, {
		name: "scaled to zero",
		build: func() *Snapshot {
			dep, rs := deployment("dcgm", appTemplate(nil, optInAnnotation))
			return snapshotOf(namespace(nil), dep, rs)
		},
		want: want{state: StateWouldInject, decidedBy: "Deployment dcgm template annotation rbac-proxy.io/inject=true", mode: "rename", findings: []string{}},
	}, {
		name: "a bare Pod that opts in",
		build: func() *Snapshot {
			tmpl := appTemplate(nil, optInAnnotation)
			pod := &corev1.Pod{ObjectMeta: tmpl.ObjectMeta, Spec: tmpl.Spec}
			pod.Namespace, pod.Name = testNS, "solo"
			return snapshotOf(namespace(nil), pod)
		},
		want: want{state: StateNotInjected, decidedBy: "Pod solo annotation rbac-proxy.io/inject=true", mode: "rename",
			findings: []string{"NotInjected Pod/solo"}, fix: "kubectl delete pod solo -n gpu, then create it again"},
	}, {
		name: "a finished Pod runs nothing",
		build: func() *Snapshot {
			dep, rs := deployment("dcgm", appTemplate(nil, nil))
			done := podOf(t, d, dep, rs, "a", false, "")
			done.Status.Phase = corev1.PodSucceeded
			return snapshotOf(namespace(enabledNS), dep, rs, done)
		},
		want: want{state: StateWouldInject, decidedBy: "Namespace gpu label rbac-proxy.io/inject=enabled", mode: "rename", findings: []string{}},
	}, {
		name: "namespace labels unreadable",
		build: func() *Snapshot {
			dep, rs := deployment("app", appTemplate(nil, nil))
			s := snapshotOf(Namespace{Name: testNS}, dep, rs, podOf(t, d, dep, rs, "a", false, ""))
			s.Denied = []Denied{{Resource: "namespaces", Reason: "may not get namespaces"}}
			return s
		},
		want: want{state: StateSkipped, findings: []string{"UnprotectedMetricsPort Deployment/app"}, unchecked: []Code{CodeNotInjected}},
	}, {
		name: "namespace labels unreadable, its Pods injected",
		build: func() *Snapshot {
			dep, rs := deployment("dcgm", appTemplate(nil, nil))
			s := snapshotOf(Namespace{Name: testNS}, dep, rs, podOf(t, d, dep, rs, "a", true, ""), certificate("dcgm", cmmeta.ConditionFalse, "Failed"))
			s.Denied = []Denied{{Resource: "namespaces", Reason: "may not get namespace gpu"}}
			return s
		},
		want: want{state: StateInjected, mode: "rename", findings: []string{"CertificateNotReady Certificate/rbac-proxy-deployment-dcgm"}, unchecked: []Code{CodeNotInjected},
			reason: "its Pods carry the proxy, so its Namespace asks for it (the Namespace's labels could not be read)"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, d, tc.build())
			if len(r.Workloads) != 1 {
				t.Fatalf("workloads %+v, want one", r.Workloads)
			}
			w := r.Workloads[0]
			mode := ""
			if w.Policy != nil {
				mode = w.Policy.Mode
			}
			if w.Injection.State != tc.want.state || w.Injection.DecidedBy != tc.want.decidedBy || mode != tc.want.mode {
				t.Errorf("workload %+v (mode %q), want state %s decided by %q, mode %q", w.Injection, mode, tc.want.state, tc.want.decidedBy, tc.want.mode)
			}
			if !strings.Contains(w.Injection.Reason, tc.want.reason) {
				t.Errorf("reason %q, want %q in it", w.Injection.Reason, tc.want.reason)
			}
			if got := findingKeys(r); !slices.Equal(got, tc.want.findings) {
				t.Errorf("findings %v, want %v", got, tc.want.findings)
			}
			if tc.want.fix != "" && (len(r.Findings) == 0 || !strings.HasPrefix(r.Findings[0].Fix, tc.want.fix)) {
				t.Errorf("fix %+v, want it to start %q", r.Findings, tc.want.fix)
			}
			var unchecked []Code
			for _, u := range r.Unchecked {
				if u.Check != CodeScraperForbidden {
					unchecked = append(unchecked, u.Check)
				}
			}
			if !slices.Equal(unchecked, tc.want.unchecked) {
				t.Errorf("unchecked %+v, want %v", r.Unchecked, tc.want.unchecked)
			}
		})
	}
}

// TestWorkloadOwners: Pods are grouped under the workload their verified owners lead to; an
// owner reference whose UID does not match the object is not followed.
func TestWorkloadOwners(t *testing.T) {
	d := testDefaults(t)
	dep, rs := deployment("dcgm", appTemplate(nil, nil))
	good := podOf(t, d, dep, rs, "a", false, "")
	forged := podOf(t, d, dep, rs, "b", false, "")
	forged.OwnerReferences[0].UID = "someone-else"
	got := []string{}
	for _, w := range workloads(snapshotOf(namespace(nil), dep, rs, good, forged)) {
		got = append(got, w.ref.Kind+"/"+w.ref.Name+":"+strings.Join(podNames(w.pods), ","))
	}
	want := []string{"Deployment/dcgm:dcgm-7d4b9c8f6-a", "ReplicaSet/dcgm-7d4b9c8f6:dcgm-7d4b9c8f6-b"}
	if !slices.Equal(got, want) {
		t.Errorf("workloads %v, want %v", got, want)
	}
}

func podNames(pods []*corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return out
}

// TestLooksInjected: a Pod with the injector's marks (its status annotation, a container named
// rbac-proxy) but not its proxy is not injected, as the certificate controller judges it
// (inject.RunsProxy): its exporter is reported, never counted as protected.
func TestLooksInjected(t *testing.T) {
	d := testDefaults(t)
	status := map[string]string{inject.AnnotationStatus: inject.StatusInjected}
	sleeper := corev1.Container{Name: inject.ContainerName, Image: testImage, Command: []string{"sleep", "inf"}}
	lookalike := corev1.Container{Name: inject.ContainerName, Image: "example.com/attacker:1"}
	for _, tc := range []struct {
		name             string
		ns, podAnn, tmpl map[string]string
		sidecar          *corev1.Container
		injected         bool
		findings         []string
		message          string
	}{{
		name:     "injected by the webhook",
		ns:       enabledNS,
		injected: true,
		findings: []string{},
	}, {
		name:     "no marks, namespace not enabled",
		findings: []string{"UnprotectedExporter Deployment/dcgm"},
	}, {
		name:     "status annotation on the Pod, namespace not enabled",
		podAnn:   status,
		findings: []string{"UnprotectedExporter Deployment/dcgm"},
		message:  "Pod dcgm-7d4b9c8f6-a carries the injector's marks but not its proxy: it has no rbac-proxy container",
	}, {
		name:     "status annotation on the Pod, namespace enabled",
		ns:       enabledNS,
		podAnn:   status,
		findings: []string{"NotInjected Deployment/dcgm"},
		message:  "carries the injector's marks but not its proxy: it has no rbac-proxy container",
	}, {
		name:     "status annotation on the template and the Pod, namespace enabled",
		ns:       enabledNS,
		podAnn:   status,
		tmpl:     status,
		findings: []string{"NotInjected Deployment/dcgm"},
		message:  "carries the injector's marks but not its proxy",
	}, {
		name:     "a container named rbac-proxy of the injector's image that sleeps, namespace enabled",
		ns:       enabledNS,
		sidecar:  &sleeper,
		findings: []string{"NotInjected Deployment/dcgm"},
		message:  "it overrides the command of its rbac-proxy container",
	}, {
		name:     "a container named rbac-proxy that sleeps, namespace not enabled",
		sidecar:  &sleeper,
		findings: []string{"UnprotectedExporter Deployment/dcgm"},
		message:  "it overrides the command of its rbac-proxy container",
	}, {
		name:     "a container named rbac-proxy of another image: not a stale proxy",
		sidecar:  &lookalike,
		podAnn:   status,
		findings: []string{"UnprotectedExporter Deployment/dcgm"},
		message:  "it does not mount a Secret as volume rbac-proxy-tls",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			tmpl := appTemplate(nil, tc.tmpl)
			tmpl.Spec.Containers[0].Image = "nvcr.io/nvidia/k8s/dcgm-exporter:4.1"
			dep, rs := deployment("dcgm", tmpl)
			pod := podOf(t, d, dep, rs, "a", tc.injected, "")
			if pod.Annotations == nil {
				pod.Annotations = map[string]string{}
			}
			for k, v := range tc.podAnn {
				pod.Annotations[k] = v
			}
			if tc.sidecar != nil {
				pod.Spec.Containers = append(pod.Spec.Containers, *tc.sidecar)
			}
			r := run(t, d, snapshotOf(namespace(tc.ns), dep, rs, pod, certificate("dcgm", cmmeta.ConditionTrue, "Ready")))
			if got := findingKeys(r); !slices.Equal(got, tc.findings) {
				t.Fatalf("findings %v, want %v: %+v", got, tc.findings, r.Findings)
			}
			if want := map[bool]int{true: 1}[tc.injected]; r.Workloads[0].Injected != want {
				t.Errorf("injected %d, want %d", r.Workloads[0].Injected, want)
			}
			if len(r.Findings) > 0 && (r.Findings[0].Severity != SeverityError || !strings.Contains(r.Findings[0].Message, tc.message)) {
				t.Errorf("finding %+v, want an error with %q", r.Findings[0], tc.message)
			}
		})
	}
}
