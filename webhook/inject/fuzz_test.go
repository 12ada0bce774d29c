package inject

import (
	"errors"
	"strings"
	"testing"
)

// FuzzAnnotationValues is FuzzInject's round trip narrowed to one annotation value on a bare Pod,
// without the admission machinery, so that it runs fast enough to search the values pflag's CSV
// reading and path.Match treat specially: any value NewPolicy admits, the proxy starts with and
// reads as the policy's Config; any it denies, it denies on a named annotation.
func FuzzAnnotationValues(f *testing.F) {
	d := testDefaults()
	static := map[string]string{AnnotationAuthz: "static"}
	local := map[string]string{AnnotationTokenVerification: "local"}
	// with are the annotations the value goes with.
	targets := []struct {
		annotation string
		with       map[string]string
	}{
		{AnnotationAllowPaths, nil},
		{AnnotationIgnorePaths, nil},
		{AnnotationTokenAudiences, nil},
		{AnnotationTokenVerification, nil},
		{AnnotationTokenAudiences, local},
		{AnnotationAllowedClients, static},
		{AnnotationAllowedGroups, static},
		{AnnotationResourceAttributes, nil},
	}
	seeds := map[string][]string{
		AnnotationAllowPaths:         {"/[", `/metrics"`, "/a/*,/b?"},
		AnnotationIgnorePaths:        {`/[a-],/healthz\`, `/[]`},
		AnnotationTokenAudiences:     {`"rbac-proxy`, `""`, "api,rbac-proxy", "HTTPS://issuer.example/", "rbac-proxy:team"},
		AnnotationTokenVerification:  {"local", "review", "Local", ""},
		AnnotationAllowedClients:     {`"admin"`, "o'brien"},
		AnnotationAllowedGroups:      {`"a,b"`, `team"a`, "a b,c"},
		AnnotationResourceAttributes: {"resource={{", "resource=services,name={{.Value}}"},
	}
	for i, target := range targets {
		for _, v := range seeds[target.annotation] {
			f.Add(uint8(i), v)
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, value string) {
		target := targets[int(which)%len(targets)]
		ann := map[string]string{target.annotation: value}
		for k, v := range target.with {
			ann[k] = v
		}
		pod := checkPod(ann)
		p, err := NewPolicy(pod, PolicyInput{Defaults: d, Namespace: testNamespace, Workload: Workload{APIVersion: "v1", Kind: "Pod", Name: "web"}})
		if err != nil {
			var pe *PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("%s=%q: %v is not a PolicyError", target.annotation, value, err)
			}
			for _, fe := range pe.Errors {
				if !strings.HasPrefix(annotationOf(fe), Prefix) || !strings.Contains(fe.Detail, allowedSep) {
					t.Fatalf("%s=%q: %+v names no annotation or nothing allowed", target.annotation, value, fe)
				}
			}
			return
		}
		if problem := roundTrip(p); problem != "" {
			t.Fatalf("%s=%q admitted, but %s", target.annotation, value, problem)
		}
	})
}
