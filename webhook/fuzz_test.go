package webhook

import (
	"context"
	"encoding/json"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// encodeAnnotations writes annotations as "key=value" lines, the fuzzer's second input.
func encodeAnnotations(m map[string]string) string {
	var lines []string
	for k, v := range m {
		lines = append(lines, k+"="+v)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func decodeAnnotations(s string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && k != "" {
			m[k] = v
		}
	}
	return m
}

// inputProblems are the problems of a Pod the API server would have refused before the webhook
// saw it; the fuzzer checks the render's invariants only on Pods without them.
func inputProblems(pod *corev1.Pod) bool {
	volumes := map[string]bool{}
	for _, v := range pod.Spec.Volumes {
		if volumes[v.Name] {
			return true
		}
		volumes[v.Name] = true
	}
	names := map[string]bool{}
	portNames := map[string]bool{}
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		if names[c.Name] {
			return true
		}
		names[c.Name] = true
		for _, m := range c.VolumeMounts {
			if !volumes[m.Name] {
				return true
			}
		}
		for _, p := range c.Ports {
			if p.Name != "" && portNames[p.Name] {
				return true
			}
			portNames[p.Name] = p.Name != ""
		}
	}
	return false
}

// FuzzInject admits arbitrary Pods with arbitrary annotations. Whatever comes in: no panic; a
// denial names an rbac-proxy.io annotation; a patch applies to the request's Pod and gives exactly
// Render's output; the injected Pod keeps the invariants podProblems checks; and its proxy's
// command line reads back, with the proxy's own flags, as the policy's proxy Config (the round trip).
func FuzzInject(f *testing.F) {
	files, err := filepath.Glob("testdata/mutation/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, path := range files {
		if strings.HasSuffix(path, ".golden.yaml") {
			continue
		}
		c := loadCase(f, path)
		ann := c.Pod.Annotations
		c.Pod.Annotations = nil
		raw, err := json.Marshal(c.Pod)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw, encodeAnnotations(ann), c.NamespaceLabels == nil, false)
	}
	f.Add([]byte(`{"spec":{"containers":[{"name":"a","ports":[{"name":"metrics","containerPort":1}]}]}}`), "rbac-proxy.io/proxy-port=1", true, true)
	// Values the webhook once admitted and the proxy then refused at start (or read as another
	// list): path.Match syntax errors, and double quotes, which pflag's CSV reading of list flags
	// either refuses or takes as quoting.
	bare := []byte(`{"metadata":{"name":"web"},"spec":{"containers":[{"name":"app","ports":[{"name":"metrics","containerPort":9090}]}]}}`)
	for _, ann := range []map[string]string{
		{inject.AnnotationAllowPaths: "/["},
		{inject.AnnotationAllowPaths: `/metrics"`},
		{inject.AnnotationIgnorePaths: `/[a-],/healthz\`},
		{inject.AnnotationTokenAudiences: `"rbac-proxy`},
		{inject.AnnotationTokenAudiences: `""`},
		{inject.AnnotationAuthz: "static", inject.AnnotationAllowedGroups: `"a,b"`},
		{inject.AnnotationAuthz: "static", inject.AnnotationAllowedGroups: `team"a`},
		{inject.AnnotationAuthz: "static", inject.AnnotationAllowedClients: `"admin"`},
		{inject.AnnotationResourceAttributes: "resource={{"},
		{inject.AnnotationTokenVerification: "local", inject.AnnotationTokenAudiences: "https://kubernetes.default.svc.cluster.local"},
		{inject.AnnotationTokenVerification: "local", inject.AnnotationTokenAudiences: "api"},
	} {
		f.Add(bare, encodeAnnotations(ann), true, false)
	}

	f.Fuzz(func(t *testing.T, podJSON []byte, annotations string, nsEnabled, containerMode bool) {
		pod := &corev1.Pod{}
		if err := json.Unmarshal(podJSON, pod); err != nil {
			return
		}
		if extra := decodeAnnotations(annotations); len(extra) > 0 {
			if pod.Annotations == nil {
				pod.Annotations = map[string]string{}
			}
			for k, v := range extra {
				pod.Annotations[k] = v
			}
		}
		cfg := testConfig()
		if containerMode {
			cfg.SidecarMode = inject.SidecarContainer
		}
		labels := map[string]string{}
		if nsEnabled {
			labels[inject.LabelInject] = inject.NamespaceInjectEnabled
		}
		e := newEnv(t, envOptions{config: cfg, namespaceLabels: labels})
		req := request(t, pod, admissionv1.Create, false)
		// The request carries the Pod as the API server would encode it.
		if err := json.Unmarshal(req.Object.Raw, pod); err != nil {
			t.Fatal(err)
		}
		resp, outcome := e.handler.admit(context.Background(), req)

		switch outcome {
		case OutcomeDenied:
			if resp.Allowed || !strings.Contains(resp.Result.Message, inject.Prefix) {
				t.Fatalf("denial without an annotation: %+v", resp.Result)
			}
			return
		case OutcomeError:
			t.Fatalf("admission error on a well-formed Pod: %s", resp.Result.Message)
		case OutcomeInjected:
		default:
			if len(resp.Patches) > 0 {
				t.Fatalf("outcome %s with a patch", outcome)
			}
			return
		}
		patched := applyPatch(t, req, resp)
		w, err := e.handler.Owners.Resolve(context.Background(), pod, testNamespace)
		if err != nil {
			t.Fatal(err)
		}
		p, err := inject.NewPolicy(pod, inject.PolicyInput{Defaults: e.handler.Defaults, Namespace: testNamespace, Workload: w})
		if err != nil {
			t.Fatalf("the handler injected but the policy fails: %v", err)
		}
		rendered := pod.DeepCopy()
		inject.Render(rendered, p)
		want, err := json.Marshal(rendered)
		if err != nil {
			t.Fatal(err)
		}
		if !jsonEqual(t, want, patched) {
			t.Fatalf("patched Pod is not Render's output\n--- render\n%s\n--- patched\n%s", want, patched)
		}
		var out corev1.Pod
		if err := json.Unmarshal(patched, &out); err != nil {
			t.Fatal(err)
		}
		if !inputProblems(pod) {
			if problems := podProblems(pod, &out); len(problems) > 0 {
				t.Fatalf("injected Pod is invalid: %s\n%s", strings.Join(problems, "; "), patched)
			}
		}
		if !inject.IsInjected(&out) {
			t.Fatal("the injected Pod is not recognized as injected")
		}
		// The round trip: the proxy starts with the command line the Pod was admitted with, and
		// reads it as the policy's Config, field for field. A Pod admitted with flags the proxy
		// refuses never runs; one it reads otherwise enforces a policy nobody wrote.
		c := injectedProxy(&out)
		if c == nil {
			t.Fatal("the injected Pod has no proxy container")
		}
		got, err := inject.ProxyConfigOf(c.Args)
		if err != nil {
			t.Fatalf("admitted, but the proxy refuses %q: %v\nannotations: %q", c.Args, err, pod.Annotations)
		}
		if field := config.Diff(p.ProxyConfig(), got); field != "" {
			t.Fatalf("admitted, but the proxy reads %s of %q otherwise than the policy\nannotations: %q", field, c.Args, pod.Annotations)
		}
		// Admitting the result again changes nothing.
		resp2, outcome2 := e.handler.admit(context.Background(), request(t, &out, admissionv1.Create, false))
		if outcome2 != OutcomeAlreadyInjected || len(resp2.Patches) > 0 {
			t.Fatalf("second admission: outcome %s, %d patches", outcome2, len(resp2.Patches))
		}
	})
}
