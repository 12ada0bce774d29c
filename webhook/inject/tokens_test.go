package inject

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
)

// TestTokenVerification: rbac-proxy.io/token-verification and the webhook's default pick the
// proxy's ServiceAccount token verification; local mode gets the Pod's audiences or
// rbac-proxy:<namespace>, and the command line the proxy reads back says the same. What the
// proxy would refuse is denied on the annotation, with its value and what is allowed.
func TestTokenVerification(t *testing.T) {
	const local, review = config.SATokensLocal, config.SATokensReview
	for _, tc := range []struct {
		name         string
		def          config.SATokenVerification // the webhook's default; "" as Defaults built by hand
		namespace    string                     // "": testNamespace
		ann          map[string]string
		wantMode     config.SATokenVerification
		wantAud      []string
		deniedOn     string // the annotation of the one denial; "": admitted
		deniedDetail string
	}{
		{name: "unset", wantMode: review},
		{name: "unset, default review", def: review, wantMode: review},
		{name: "review", ann: map[string]string{AnnotationTokenVerification: "review"}, wantMode: review},
		{name: "review keeps the API server's audiences", ann: map[string]string{AnnotationTokenVerification: "review", AnnotationTokenAudiences: "https://kubernetes.default.svc"}, wantMode: review, wantAud: []string{"https://kubernetes.default.svc"}},
		{name: "local: the namespace's audience", ann: map[string]string{AnnotationTokenVerification: "local"}, wantMode: local, wantAud: []string{"rbac-proxy:team"}},
		{name: "local in another namespace", namespace: "gpu-operator", ann: map[string]string{AnnotationTokenVerification: "local"}, wantMode: local, wantAud: []string{"rbac-proxy:gpu-operator"}},
		{name: "local: the Pod's audiences", ann: map[string]string{AnnotationTokenVerification: "local", AnnotationTokenAudiences: "metrics,rbac-proxy"}, wantMode: local, wantAud: []string{"metrics", "rbac-proxy"}},
		{name: "default local", def: local, wantMode: local, wantAud: []string{"rbac-proxy:team"}},
		{name: "default local, Pod's audience", def: local, ann: map[string]string{AnnotationTokenAudiences: "scrape"}, wantMode: local, wantAud: []string{"scrape"}},
		{name: "default local, Pod review", def: local, ann: map[string]string{AnnotationTokenVerification: "review"}, wantMode: review},

		{name: "unknown mode", ann: map[string]string{AnnotationTokenVerification: "jwt"}, deniedOn: AnnotationTokenVerification, deniedDetail: "unknown verification"},
		{name: "mode in capitals", ann: map[string]string{AnnotationTokenVerification: "Local"}, deniedOn: AnnotationTokenVerification, deniedDetail: "unknown verification"},
		{name: "empty mode", ann: map[string]string{AnnotationTokenVerification: ""}, deniedOn: AnnotationTokenVerification, deniedDetail: "unknown verification"},
		{name: "local, API server URL", ann: map[string]string{AnnotationTokenVerification: "local", AnnotationTokenAudiences: "rbac-proxy,https://kubernetes.default.svc"}, deniedOn: AnnotationTokenAudiences, deniedDetail: `"https://kubernetes.default.svc" is an https URL`},
		{name: "local, an issuer", def: local, ann: map[string]string{AnnotationTokenAudiences: "HTTPS://oidc.eks.example/id/1"}, deniedOn: AnnotationTokenAudiences, deniedDetail: "the cluster's service-account issuer"},
		{name: "local, api", ann: map[string]string{AnnotationTokenVerification: "local", AnnotationTokenAudiences: "api"}, deniedOn: AnnotationTokenAudiences, deniedDetail: `the proxy would refuse to start: --auth-token-audiences: Invalid value: "api": "api" is an audience of the API server itself`},
		{name: "local, service name", ann: map[string]string{AnnotationTokenVerification: "local", AnnotationTokenAudiences: "kubernetes.default.svc"}, deniedOn: AnnotationTokenAudiences, deniedDetail: "an audience of the API server itself"},
		{name: "local, empty item", ann: map[string]string{AnnotationTokenVerification: "local", AnnotationTokenAudiences: "a,,b"}, deniedOn: AnnotationTokenAudiences, deniedDetail: "empty item"},
		{name: "local, no namespace", namespace: "-", ann: map[string]string{AnnotationTokenVerification: "local"}, deniedOn: AnnotationTokenAudiences, deniedDetail: "no namespace to derive rbac-proxy:NAMESPACE from"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := testDefaults()
			d.TokenVerification = tc.def
			ns := tc.namespace
			switch ns {
			case "":
				ns = testNamespace
			case "-":
				ns = ""
			}
			pod := checkPod(tc.ann)
			pod.Namespace = ns
			p, err := NewPolicy(pod, PolicyInput{Defaults: d, Namespace: ns, Workload: Workload{APIVersion: "v1", Kind: "Pod", Name: "web"}})
			if tc.deniedOn != "" {
				var pe *PolicyError
				if !errors.As(err, &pe) || len(pe.Errors) != 1 {
					t.Fatalf("got %v, want one denial on %s", err, tc.deniedOn)
				}
				fe := pe.Errors[0]
				if annotationOf(fe) != tc.deniedOn || !strings.Contains(fe.Detail, allowedSep+AllowedOf(tc.deniedOn)) || !strings.Contains(describe(fe), tc.deniedDetail) {
					t.Fatalf("got %q, want a denial of %s saying %q and what it allows", describe(fe), tc.deniedOn, tc.deniedDetail)
				}
				if v, set := tc.ann[tc.deniedOn]; set && fe.BadValue != v {
					t.Fatalf("the denial names the value %q, want %q", fe.BadValue, v)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if problem := roundTrip(p); problem != "" {
				t.Fatal(problem)
			}
			got, err := ProxyConfigOf(p.Args)
			if err != nil {
				t.Fatal(err)
			}
			if mode := got.Authentication.ServiceAccounts.Verification; mode != tc.wantMode {
				t.Errorf("the proxy verifies ServiceAccount tokens by %s, want %s (args %q)", mode, tc.wantMode, p.Args)
			}
			if aud := got.Authentication.Audiences; !slices.Equal(aud, tc.wantAud) {
				t.Errorf("the proxy requires audiences %q, want %q (args %q)", aud, tc.wantAud, p.Args)
			}
		})
	}
}
