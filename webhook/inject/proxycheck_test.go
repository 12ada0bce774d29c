package inject

import (
	"errors"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
)

// checkPod is a bare Pod with one metrics port and the given annotations.
func checkPod(ann map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: testNamespace, Annotations: ann},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name:  "app",
			Image: "example/web:1",
			Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: 9090}},
		}}},
	}
}

func checkPolicy(t *testing.T, ann map[string]string) (*Policy, error) {
	t.Helper()
	d := testDefaults()
	return NewPolicy(checkPod(ann), PolicyInput{Defaults: d, Namespace: testNamespace, Workload: Workload{APIVersion: "v1", Kind: "Pod", Name: "web"}})
}

// TestProxyRefusalsDenied admits annotation values the webhook's own parsing lets through but
// the proxy refuses at start, or reads as another list (pflag reads list flags as CSV): each must
// be denied with a field.Error on the annotation, its value and what is allowed. The admitted
// values next to them show the check refuses no more than the proxy does.
func TestProxyRefusalsDenied(t *testing.T) {
	static := func(k, v string) map[string]string {
		return map[string]string{AnnotationAuthz: "static", k: v}
	}
	one := func(k, v string) map[string]string { return map[string]string{k: v} }
	const quote = "items may not contain a double quote"
	for _, tc := range []struct {
		name       string
		ann        map[string]string
		annotation string // empty: admitted
		want       []string
	}{
		// path.Match refuses the pattern (proxy/config/validate.go validatePatterns).
		{"open class", one(AnnotationAllowPaths, "/["), AnnotationAllowPaths, []string{`--allow-paths: Invalid value: "/[": not a valid path.Match pattern`}},
		{"open class after glob", one(AnnotationAllowPaths, "/metrics,/*["), AnnotationAllowPaths, []string{`--allow-paths: Invalid value: "/*["`}},
		{"empty class", one(AnnotationIgnorePaths, "/[]"), AnnotationIgnorePaths, []string{"not a valid path.Match pattern"}},
		{"open range", one(AnnotationIgnorePaths, "/[a-]"), AnnotationIgnorePaths, []string{"not a valid path.Match pattern"}},
		{"trailing escape", one(AnnotationIgnorePaths, `/healthz\`), AnnotationIgnorePaths, []string{"not a valid path.Match pattern"}},
		// CSV refuses the value outright.
		{"bare quote in path", one(AnnotationAllowPaths, `/metrics"`), AnnotationAllowPaths, []string{quote, `bare " in non-quoted-field`}},
		{"bare quote in group", static(AnnotationAllowedGroups, `team"a`), AnnotationAllowedGroups, []string{quote, "--allowed-groups as CSV and refuses it"}},
		{"bare quote in client", static(AnnotationAllowedClients, `system:serviceaccount:mon:prom"`), AnnotationAllowedClients, []string{quote, "--allowed-users as CSV and refuses it"}},
		{"unclosed quote in audience", one(AnnotationTokenAudiences, `"rbac-proxy`), AnnotationTokenAudiences, []string{quote, `extraneous or missing " in quoted-field`}},
		// CSV reads another list than the webhook.
		{"quoted comma joins groups", static(AnnotationAllowedGroups, `"a,b"`), AnnotationAllowedGroups, []string{quote, `would get ["a,b"], not ["\"a" "b\""]`}},
		{"quoted client", static(AnnotationAllowedClients, `"admin"`), AnnotationAllowedClients, []string{quote, `would get ["admin"], not ["\"admin\""]`}},
		{"quoted audience", one(AnnotationTokenAudiences, `api,"rbac-proxy"`), AnnotationTokenAudiences, []string{quote, `would get ["api" "rbac-proxy"]`}},
		{"doubled quote", static(AnnotationAllowedGroups, `"a""b"`), AnnotationAllowedGroups, []string{quote, `would get ["a\"b"]`}},
		// CSV reads an empty item, which the proxy's validation refuses.
		{"empty quoted group", static(AnnotationAllowedGroups, `""`), AnnotationAllowedGroups, []string{quote, "group names must not be empty"}},
		{"empty quoted audience", one(AnnotationTokenAudiences, `""`), AnnotationTokenAudiences, []string{quote, "audiences must not be empty strings"}},
		// The proxy compiles resource attributes as templates; its error names the attribute.
		{"unclosed template", one(AnnotationResourceAttributes, "resource={{"), AnnotationResourceAttributes, []string{"not a valid template"}},
		{"unknown template value", one(AnnotationResourceAttributes, "resource=services,name={{.Pod}}"), AnnotationResourceAttributes, []string{"the only template value is {{ .Value }}"}},

		{"plain paths", one(AnnotationAllowPaths, "/metrics,/debug/*"), "", nil},
		{"pattern syntax", one(AnnotationIgnorePaths, `/a\*,/[a-z]?,/]`), "", nil},
		{"groups with spaces and colons", static(AnnotationAllowedGroups, "system:monitoring,team a"), "", nil},
		{"single quote", static(AnnotationAllowedClients, "o'brien"), "", nil},
		{"audiences", one(AnnotationTokenAudiences, "https://kubernetes.default.svc,rbac-proxy"), "", nil},
		{"attributes", one(AnnotationResourceAttributes, "namespace=gpu,resource=services,subresource=proxy"), "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := checkPolicy(t, tc.ann)
			if tc.annotation == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if problems := proxyArgsProblems(proxyArgs(p), p); len(problems) > 0 {
					t.Fatalf("admitted, but %s", strings.Join(problems, "; "))
				}
				return
			}
			var pe *PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("got %v, want a PolicyError on %s (the proxy would not start with %v)", err, tc.annotation, proxyArgsOf(p))
			}
			if len(pe.Errors) != 1 {
				t.Fatalf("got %d errors, want one: %v", len(pe.Errors), err)
			}
			fe := pe.Errors[0]
			if annotationOf(fe) != tc.annotation || fe.BadValue != tc.ann[tc.annotation] || !strings.Contains(fe.Detail, allowedSep) {
				t.Fatalf("got %v, want an error on %s=%q saying what is allowed", fe, tc.annotation, tc.ann[tc.annotation])
			}
			for _, w := range tc.want {
				if !strings.Contains(describe(fe), w) {
					t.Errorf("error %q does not say %q", describe(fe), w)
				}
			}
		})
	}
}

// proxyArgsOf renders p, or says there is no policy.
func proxyArgsOf(p *Policy) []string {
	if p == nil {
		return nil
	}
	return proxyArgs(p)
}

// TestCheckArgsAttribution drives checkArgs with command lines no annotation renders today, so
// that the fallbacks are exercised: an error no one annotation explains lands on
// rbac-proxy.io/inject, a flag several annotations set lands on the one the Pod sets, a default
// that the proxy refuses lands on its (unset) annotation, and a proxy warning is a refusal.
func TestCheckArgsAttribution(t *testing.T) {
	p, err := checkPolicy(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := proxyArgs(p)
	with := func(arg string) []string { return append(slices.Clone(base), arg) }
	replace := func(flag, arg string) []string {
		var out []string
		for _, a := range base {
			if strings.HasPrefix(a, flag+"=") {
				a = arg
			}
			out = append(out, a)
		}
		return out
	}
	for _, tc := range []struct {
		name       string
		args       []string
		ann        map[string]string
		annotation string
		unset      bool
		want       string
	}{
		{"unknown flag", with("--no-such-flag"), nil, AnnotationInject, false, "unknown flag: --no-such-flag"},
		{"warning", with("--vmodule=x"), nil, AnnotationInject, false, "the proxy would ignore part of its command line: --vmodule is ignored"},
		{"flag of several annotations, none set", replace(FlagUpstream, FlagUpstream+"=ftp://127.0.0.1:9090/"), nil, AnnotationInject, false, "the scheme must be http, https or unix"},
		{"flag of several annotations, one set", replace(FlagUpstream, FlagUpstream+"=ftp://127.0.0.1:9090/"), map[string]string{AnnotationUpstreamScheme: "http"}, AnnotationUpstreamScheme, false, "the scheme must be http, https or unix"},
		{"default refused", replace(FlagProxyEndpointsPort, FlagProxyEndpointsPort+"=8443"), nil, AnnotationEndpointsPort, true, "must differ from the port of --secure-listen-address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := &problems{}
			checkArgs(tc.args, policyLists(p), tc.ann, errs)
			if len(errs.list) != 1 {
				t.Fatalf("got %v, want one error", errs.list)
			}
			fe := errs.list[0]
			if annotationOf(fe) != tc.annotation || (fe.Type == field.ErrorTypeRequired) != tc.unset || !strings.Contains(fe.Detail, tc.want) || !strings.Contains(fe.Detail, allowedSep) {
				t.Fatalf("got %+v, want an error on %s (unset %v) saying %q", fe, tc.annotation, tc.unset, tc.want)
			}
		})
	}
}

// TestProxyConfigListsCoverPolicyLists keeps the two sides of the list comparison in step: every
// list the render writes is compared with a list of the proxy's Config, and comes from exactly
// one annotation, so that a mismatch can be reported on it.
func TestProxyConfigListsCoverPolicyLists(t *testing.T) {
	p := &Policy{}
	got := proxyConfigLists(&config.Config{})
	for _, l := range policyLists(p) {
		if _, ok := got[l.Flag]; !ok {
			t.Errorf("%s is not compared with the proxy's Config", l.Flag)
		}
		var from []string
		for _, a := range Annotations() {
			for _, f := range a.Flags {
				if f == l.Flag {
					from = append(from, a.Name)
				}
			}
		}
		if len(from) != 1 {
			t.Errorf("%s is set by %v, want one annotation", l.Flag, from)
		}
	}
}
