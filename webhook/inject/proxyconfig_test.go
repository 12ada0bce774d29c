package inject

import (
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

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

// TestProxyRefusalsDenied admits annotation values the proxy refuses at start, or that a list
// annotation does not carry (double quotes: the list is split at every comma, with no quoting):
// each must be denied with a field.Error on the annotation, its value and what is allowed. The
// admitted values next to them show the checks refuse no more than that, and that the proxy
// reads them as the policy says.
func TestProxyRefusalsDenied(t *testing.T) {
	static := func(k, v string) map[string]string {
		return map[string]string{AnnotationAuthz: "static", k: v}
	}
	one := func(k, v string) map[string]string { return map[string]string{k: v} }
	tenancy := func(labels string) map[string]string {
		return map[string]string{AnnotationTenancy: "namespace", AnnotationTenancyNamespaceLabels: labels}
	}
	const quote = "double quote in"
	for _, tc := range []struct {
		name       string
		ann        map[string]string
		annotation string // empty: admitted
		want       []string
	}{
		// path.Match refuses the pattern (proxy/config's validation).
		{"open class", one(AnnotationAllowPaths, "/["), AnnotationAllowPaths, []string{`the proxy would refuse to start: --allow-paths: Invalid value: "/[": not a valid path.Match pattern`}},
		{"open class after glob", one(AnnotationAllowPaths, "/metrics,/*["), AnnotationAllowPaths, []string{`--allow-paths: Invalid value: "/*["`}},
		{"empty class", one(AnnotationIgnorePaths, "/[]"), AnnotationIgnorePaths, []string{"not a valid path.Match pattern"}},
		{"open range", one(AnnotationIgnorePaths, "/[a-]"), AnnotationIgnorePaths, []string{"not a valid path.Match pattern"}},
		{"trailing escape", one(AnnotationIgnorePaths, `/healthz\`), AnnotationIgnorePaths, []string{"not a valid path.Match pattern"}},
		// A list written as CSV would be read as other items than its author meant.
		{"bare quote in path", one(AnnotationAllowPaths, `/metrics"`), AnnotationAllowPaths, []string{quote + ` "/metrics\""`}},
		{"bare quote in group", static(AnnotationAllowedGroups, `team"a`), AnnotationAllowedGroups, []string{quote}},
		{"bare quote in client", static(AnnotationAllowedClients, `system:serviceaccount:mon:prom"`), AnnotationAllowedClients, []string{quote}},
		{"unclosed quote in audience", one(AnnotationTokenAudiences, `"rbac-proxy`), AnnotationTokenAudiences, []string{quote}},
		{"quoted comma in groups", static(AnnotationAllowedGroups, `"a,b"`), AnnotationAllowedGroups, []string{quote + ` "\"a"`, "split at every comma, with no quoting"}},
		{"quoted client", static(AnnotationAllowedClients, `"admin"`), AnnotationAllowedClients, []string{quote}},
		{"quoted audience", one(AnnotationTokenAudiences, `api,"rbac-proxy"`), AnnotationTokenAudiences, []string{quote}},
		{"doubled quote", static(AnnotationAllowedGroups, `"a""b"`), AnnotationAllowedGroups, []string{quote}},
		{"empty quoted group", static(AnnotationAllowedGroups, `""`), AnnotationAllowedGroups, []string{quote}},
		{"empty quoted audience", one(AnnotationTokenAudiences, `""`), AnnotationTokenAudiences, []string{quote}},
		// The proxy compiles resource attributes as templates.
		{"unclosed template", one(AnnotationResourceAttributes, "resource={{"), AnnotationResourceAttributes, []string{"the proxy would refuse to start", "not a valid template"}},
		{"unknown template value", one(AnnotationResourceAttributes, "resource=services,name={{.Pod}}"), AnnotationResourceAttributes, []string{"the only template value is {{ .Value }}"}},
		// The proxy's parser reads keys in any case: given twice is refused.
		{"key twice in two cases", one(AnnotationResourceAttributes, "resource=pods,Resource=services"), AnnotationResourceAttributes, []string{"given twice"}},
		// The proxy's validation of tenancy.
		{"tenancy mode", one(AnnotationTenancy, "label"), AnnotationTenancy, []string{"unknown mode"}},
		{"tenancy labels without tenancy", one(AnnotationTenancyNamespaceLabels, "namespace"), AnnotationTenancyNamespaceLabels, []string{"only used with " + AnnotationTenancy + "=namespace"}},
		{"tenancy label not a label name", tenancy("k8s-namespace"), AnnotationTenancyNamespaceLabels, []string{`the proxy would refuse to start: --tenancy-namespace-labels: Invalid value: "k8s-namespace": must be a Prometheus label name`}},
		{"tenancy label twice", tenancy("namespace,namespace"), AnnotationTenancyNamespaceLabels, []string{`Duplicate value: "namespace"`}},
		{"tenancy empty label", tenancy("namespace,"), AnnotationTenancyNamespaceLabels, []string{"empty item"}},
		{"tenancy quoted label", tenancy(`"namespace"`), AnnotationTenancyNamespaceLabels, []string{quote}},

		{"plain paths", one(AnnotationAllowPaths, "/metrics,/debug/*"), "", nil},
		{"pattern syntax", one(AnnotationIgnorePaths, `/a\*,/[a-z]?,/]`), "", nil},
		{"groups with spaces and colons", static(AnnotationAllowedGroups, "system:monitoring,team a"), "", nil},
		{"single quote", static(AnnotationAllowedClients, "o'brien"), "", nil},
		{"audiences", one(AnnotationTokenAudiences, "https://kubernetes.default.svc,rbac-proxy"), "", nil},
		{"attributes", one(AnnotationResourceAttributes, "namespace=gpu,resource=services,subresource=proxy"), "", nil},
		{"attribute template", one(AnnotationResourceAttributes, "resource=services,name={{.Value}}"), "", nil},
		{"attribute key in capitals", one(AnnotationResourceAttributes, "Resource=services"), "", nil},
		{"tenancy", one(AnnotationTenancy, "namespace"), "", nil},
		{"tenancy under static", map[string]string{AnnotationAuthz: "static", AnnotationAllowedGroups: "system:monitoring", AnnotationTenancy: "namespace"}, "", nil},
		{"tenancy label", tenancy("kubernetes_namespace"), "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := checkPolicy(t, tc.ann)
			if tc.annotation == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if problem := roundTrip(p); problem != "" {
					t.Fatalf("admitted, but %s", problem)
				}
				return
			}
			var pe *PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("got %v, want a PolicyError on %s", err, tc.annotation)
			}
			if len(pe.Errors) != 1 {
				t.Fatalf("got %d errors, want one: %v", len(pe.Errors), err)
			}
			fe := pe.Errors[0]
			if annotationOf(fe) != tc.annotation || fe.BadValue != tc.ann[tc.annotation] || !strings.Contains(fe.Detail, allowedSep+AllowedOf(tc.annotation)) {
				t.Fatalf("got %v, want an error on %s=%q saying what it allows", fe, tc.annotation, tc.ann[tc.annotation])
			}
			for _, w := range tc.want {
				if !strings.Contains(describe(fe), w) {
					t.Errorf("error %q does not say %q", describe(fe), w)
				}
			}
		})
	}
}

// TestProxyArgsGuard: a configuration the parsers never make, but which the proxy would refuse
// or no command line carries, is still denied, on rbac-proxy.io/inject.
func TestProxyArgsGuard(t *testing.T) {
	base, err := checkPolicy(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		change func(*Policy)
		want   string
	}{
		{"endpoints on the proxy port", func(p *Policy) { p.EndpointsPort = p.ProxyPort }, "the proxy would refuse to start: --proxy-endpoints-port"},
		{"a comma in a resource attribute", func(p *Policy) { p.ResourceAttributes = &config.ResourceAttributes{Resource: "pods,services"} }, "no command line carries the proxy's configuration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := *base
			tc.change(&p)
			errs := &problems{}
			if args := proxyArgs(&p, errs); args != nil || len(errs.list) != 1 {
				t.Fatalf("args %q, errors %v; want one error and no args", args, errs.list)
			}
			fe := errs.list[0]
			if annotationOf(fe) != AnnotationInject || !strings.Contains(fe.Detail, tc.want) {
				t.Fatalf("got %v, want an error on %s saying %q", fe, AnnotationInject, tc.want)
			}
		})
	}
}

// TestProxyConfig: the Policy's proxy Config is the flags' defaults with what the policy sets:
// the proxy port on every address, the app on loopback at its upstream port, the files where the
// render mounts them, and the lists, modes and attributes as parsed.
func TestProxyConfig(t *testing.T) {
	p := &Policy{
		ProxyPort: 9443, EndpointsPort: 9444, UpstreamPort: 19400, UpstreamScheme: SchemeHTTPS,
		Probes:         []config.ProbePassthrough{{Scheme: "http", Method: "GET", Port: 19400, Path: "/health"}},
		ClientCA:       &ClientCA{Source: ClientCAScrapers, Name: ScrapersCAConfigMap, Key: CAKey},
		TokenAudiences: []string{"rbac-proxy"},
		IgnorePaths:    []string{"/healthz"},
		Authz:          config.AuthzStatic,
		AllowedGroups:  []string{"system:monitoring"},
		Verbosity:      2,
	}
	want := config.Default()
	want.Listen = config.ListenConfig{SecureAddress: "0.0.0.0:9443", ProxyEndpointsPort: 9444, ProbePassthrough: p.Probes}
	want.Upstream.URL = &url.URL{Scheme: "https", Host: "127.0.0.1:19400", Path: "/"}
	want.Upstream.InsecureSkipVerify = true
	want.TLS.CertFile, want.TLS.KeyFile = "/etc/rbac-proxy/tls/tls.crt", "/etc/rbac-proxy/tls/tls.key"
	want.TLS.ClientCAFile = "/etc/rbac-proxy/client-ca/ca.crt"
	want.Authentication.Audiences = []string{"rbac-proxy"}
	want.Paths.Ignore = []string{"/healthz"}
	want.Authorization.Mode = config.AuthzStatic
	want.Authorization.Allowed.Groups = []string{"system:monitoring"}
	want.Log.Verbosity = 2
	got := p.ProxyConfig()
	if field := config.Diff(want, got); field != "" {
		t.Fatalf("ProxyConfig differs at %s: %+v", field, got)
	}
	if err := got.Validate(); err != nil {
		t.Fatal(err)
	}
	errs := &problems{}
	p.Args = proxyArgs(p, errs)
	if err := errs.err(); err != nil {
		t.Fatal(err)
	}
	if problem := roundTrip(p); problem != "" {
		t.Fatal(problem)
	}
}

// TestEveryAnnotationRoundTrip walks every annotation through the inject core: with it set (and
// what it needs beside it), the Pod is admitted, the proxy accepts the rendered command line and
// reads it as the policy's Config, field for field, and the command line carries the proxy
// flags the annotation's documentation names.
func TestEveryAnnotationRoundTrip(t *testing.T) {
	listen := "arg:--listen={host}:{port}"
	cases := map[string]map[string]string{
		AnnotationInject:                 {AnnotationInject: "true"},
		AnnotationPort:                   {AnnotationPort: "http"},
		AnnotationPortMode:               {AnnotationPortMode: "takeover", AnnotationUpstreamListen: listen},
		AnnotationPreset:                 {AnnotationPreset: "node-exporter"},
		AnnotationUpstreamListen:         {AnnotationUpstreamListen: "env:LISTEN_ADDR={host}:{port}"},
		AnnotationUpstreamPort:           {AnnotationUpstreamListen: listen, AnnotationUpstreamPort: "19090"},
		AnnotationProxyPort:              {AnnotationProxyPort: "9443"},
		AnnotationEndpointsPort:          {AnnotationEndpointsPort: "9444"},
		AnnotationUpstreamScheme:         {AnnotationUpstreamScheme: "https"},
		AnnotationAuthz:                  {AnnotationAuthz: "static", AnnotationAllowedGroups: "system:monitoring"},
		AnnotationAllowedClients:         {AnnotationAuthz: "static", AnnotationAllowedClients: "system:serviceaccount:monitoring:prometheus,o'brien"},
		AnnotationAllowedGroups:          {AnnotationAuthz: "static", AnnotationAllowedGroups: "system:monitoring,team a"},
		AnnotationResourceAttributes:     {AnnotationResourceAttributes: "namespace=gpu,resource=services,subresource=proxy,name=dcgm-exporter"},
		AnnotationTenancy:                {AnnotationTenancy: "namespace"},
		AnnotationTenancyNamespaceLabels: {AnnotationTenancy: "namespace", AnnotationTenancyNamespaceLabels: "exported_namespace,namespace"},
		AnnotationClientCA:               {AnnotationClientCA: "scrapers"},
		AnnotationTokenAudiences:         {AnnotationTokenAudiences: "rbac-proxy,https://kubernetes.default.svc"},
		AnnotationTokenVerification:      {AnnotationTokenVerification: "local"},
		AnnotationAllowPaths:             {AnnotationAllowPaths: `/metrics,/debug/*,/a\*`},
		AnnotationIgnorePaths:            {AnnotationIgnorePaths: "/healthz,/[a-z]?"},
		AnnotationTLSSecret:              {AnnotationTLSSecret: "web-tls"},
		AnnotationIssuer:                 {AnnotationIssuer: "ClusterIssuer/rbac-proxy-ca"},
		AnnotationDNSNames:               {AnnotationDNSNames: "web.team.svc,*.web.team.svc"},
	}
	d := testDefaults()
	d.Verbosity = 3
	known := config.NewFlags("rbac-proxy").FlagSet()
	for _, spec := range Annotations() {
		ann, ok := cases[spec.Name]
		if !ok {
			t.Errorf("no case for %s", spec.Name)
			continue
		}
		t.Run(strings.TrimPrefix(spec.Name, Prefix), func(t *testing.T) {
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: testNamespace, Annotations: ann},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:  "app",
					Image: "example/web:1",
					Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: 9090}, {Name: "http", ContainerPort: 8080}},
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
						Port: intstr.FromString("metrics"), Path: "/ready"}}},
				}}},
			}
			p, err := NewPolicy(pod, PolicyInput{Defaults: d, Namespace: testNamespace, Workload: PodWorkload(pod)})
			if err != nil {
				t.Fatal(err)
			}
			if problem := roundTrip(p); problem != "" {
				t.Fatal(problem)
			}
			for _, flag := range spec.Flags {
				if known.Lookup(strings.TrimPrefix(flag, "--")) == nil {
					t.Errorf("%s documents %s, which the proxy does not have", spec.Name, flag)
				}
				if !slices.ContainsFunc(p.Args, func(a string) bool { return a == flag || strings.HasPrefix(a, flag+"=") }) {
					t.Errorf("%s documents %s, which its command line %q does not carry", spec.Name, flag, p.Args)
				}
			}
		})
	}
	if len(cases) != len(Annotations()) {
		t.Errorf("%d cases for %d annotations", len(cases), len(Annotations()))
	}
}

// TestProxyDefaultsCopy: ProxyConfig's start, a copy of the defaults built once, is still the
// flags' defaults after policies have been built from it.
func TestProxyDefaultsCopy(t *testing.T) {
	for _, ann := range []map[string]string{nil, {AnnotationTokenAudiences: "a,b", AnnotationAllowPaths: "/metrics"}} {
		p, err := checkPolicy(t, ann)
		if err != nil {
			t.Fatal(err)
		}
		p.ProxyConfig().Authentication.Audiences = append(p.ProxyConfig().Authentication.Audiences, "x")
	}
	if field := config.Diff(config.Default(), &proxyDefaults); field != "" {
		t.Fatalf("the defaults changed at %s", field)
	}
}

// TestRenderedArgsRemembered: a configuration rendered before gets the same command line again,
// as a copy its caller may change.
func TestRenderedArgsRemembered(t *testing.T) {
	first, err := checkPolicy(t, map[string]string{AnnotationTokenAudiences: "remembered"})
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(first.Args)
	first.Args[0] = "--changed"
	again, err := checkPolicy(t, map[string]string{AnnotationTokenAudiences: "remembered"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(again.Args, want) {
		t.Fatalf("args %q, want %q", again.Args, want)
	}
	if direct, err := config.Args(again.ProxyConfig()); err != nil || !slices.Equal(direct, want) {
		t.Fatalf("config.Args gives %q (%v), the remembered %q", direct, err, want)
	}
	// Two configurations whose JSON is the same (invalid UTF-8 reads as U+FFFD) get each its own.
	for _, v := range []string{"\xc6", "\xfa"} {
		p, err := checkPolicy(t, map[string]string{AnnotationTokenAudiences: v})
		if err != nil {
			t.Fatal(err)
		}
		if problem := roundTrip(p); problem != "" {
			t.Fatalf("%q: %s", v, problem)
		}
	}
}

// TestMakesSARs: the access check asks for SubjectAccessReviews whenever the proxy makes them,
// for tenants under authz static too.
func TestMakesSARs(t *testing.T) {
	for _, tc := range []struct {
		ann  map[string]string
		want bool
	}{
		{nil, true},
		{map[string]string{AnnotationAuthz: "static", AnnotationAllowedGroups: "g"}, false},
		{map[string]string{AnnotationAuthz: "static", AnnotationAllowedGroups: "g", AnnotationTenancy: "namespace"}, true},
	} {
		p, err := checkPolicy(t, tc.ann)
		if err != nil {
			t.Fatal(err)
		}
		if p.MakesSARs() != tc.want {
			t.Errorf("%v: MakesSARs = %v, want %v", tc.ann, !tc.want, tc.want)
		}
	}
}
