package inject

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestDNSNamePolicy(t *testing.T) {
	team := dnsNamePolicy{namespace: "team", clusterDomain: "cluster.local", suffixes: []string{"gpu.corp.example"}}
	def := dnsNamePolicy{namespace: "default", clusterDomain: "cluster.local"}
	svcNS := dnsNamePolicy{namespace: "svc", clusterDomain: "cluster.local"}
	local := dnsNamePolicy{namespace: "local", clusterDomain: "cluster.local"}
	gpu := dnsNamePolicy{namespace: "gpu-operator", clusterDomain: "cluster.local"}
	com := dnsNamePolicy{namespace: "com", clusterDomain: "cluster.local"}
	for _, tc := range []struct {
		policy dnsNamePolicy
		name   string
		// problem is a substring of the refusal, empty when the name is allowed.
		problem string
	}{
		{team, "web.team.svc", ""},
		{team, "web.team.svc.cluster.local", ""},
		{team, "*.team.svc", ""},
		{team, "*.team.svc.cluster.local", ""},
		{team, "web-0.web.team.svc.cluster.local", ""},
		{gpu, "dcgm.gpu-operator", ""},
		{gpu, "*.gpu-operator", "outside"},
		// A namespace named like a public suffix (team, com) gets no short names: they are the
		// internet's.
		{team, "web.team", "outside"},
		{team, "*.team", "outside"},
		{com, "google.com", "outside"},
		{com, "*.com", "outside"},
		{com, "web.com.svc", ""},
		{team, "node1.gpu.corp.example", ""},
		{team, "*.gpu.corp.example", ""},
		{team, "gpu.corp.example", ""},
		// The confused-deputy names of the security review.
		{team, "*.kube-system.svc", "outside the namespace team"},
		{team, "kubernetes.default.svc", "outside the namespace team"},
		{team, "*.other-team.svc.cluster.local", "outside the namespace team"},
		{team, "x.other.svc", "outside the namespace team"},
		// Bare wildcards and the cluster's own zones.
		{team, "*.svc", "outside"},
		{team, "*.svc.cluster.local", "outside"},
		{team, "*.cluster.local", "outside"},
		{team, "team.svc", "outside"},
		{team, "team.svc.cluster.local", "outside"},
		{team, "a.b.team", "outside"},
		{team, "*.corp.example", "outside"},
		{team, "evilgpu.corp.example", "outside"},
		{team, "web.team.svc.other.domain", "outside"},
		// The API server's names, even in its own namespace.
		{def, "kubernetes.default.svc", "API server"},
		{def, "kubernetes.default.svc.cluster.local", "API server"},
		{def, "kubernetes.default", "API server"},
		{def, "*.default.svc", "API server"},
		{def, "*.default", "API server"},
		{def, "x.kubernetes.default.svc", "API server"},
		{def, "web.default.svc", ""},
		// A namespace named like a zone does not reach beyond itself.
		{svcNS, "kubernetes.default.svc", "outside"},
		{svcNS, "web.svc.svc", ""},
		{local, "cluster.local", "outside"},
		{local, "*.cluster.local", "outside"},
		{local, "web.local.svc.cluster.local", ""},
	} {
		t.Run(tc.policy.namespace+"/"+tc.name, func(t *testing.T) {
			got := tc.policy.allowed(tc.name)
			switch {
			case tc.problem == "" && got != "":
				t.Errorf("refused: %s", got)
			case tc.problem != "" && !strings.Contains(got, tc.problem):
				t.Errorf("got %q, want a refusal containing %q", got, tc.problem)
			}
		})
	}
}

func TestIssuerAllowList(t *testing.T) {
	def := &IssuerRef{Kind: "ClusterIssuer", Group: certManagerGroup, Name: "rbac-proxy-ca"}
	vault := IssuerRef{Kind: "VaultIssuer", Group: "vault.example.com", Name: "metrics"}
	list := IssuerAllowList{Default: def, Named: []IssuerRef{vault}, Namespaced: true, ScrapersNamespace: "monitoring"}
	only := IssuerAllowList{Default: def}
	for _, tc := range []struct {
		list IssuerAllowList
		ref  IssuerRef
		// namespace is the Pod's; "team" when empty.
		namespace string
		want      bool
	}{
		{only, *def, "", true},
		{only, IssuerRef{Kind: "ClusterIssuer", Group: certManagerGroup, Name: "other"}, "", false},
		{only, IssuerRef{Kind: "Issuer", Group: certManagerGroup, Name: "own"}, "", false},
		{list, IssuerRef{Kind: "Issuer", Group: certManagerGroup, Name: "own"}, "", true},
		{list, vault, "", true},
		{list, IssuerRef{Kind: "VaultIssuer", Group: "vault.example.com", Name: "other"}, "", false},
		// A namespaced kind of another group is not a cert-manager Issuer of the namespace.
		{list, IssuerRef{Kind: "Issuer", Group: "evil.example.com", Name: "own"}, "", false},
		{list, IssuerRef{Kind: "ClusterIssuer", Group: certManagerGroup, Name: "any"}, "", false},
		{IssuerAllowList{}, *def, "", false},
		// Not the scrapers' CA Issuer for a serving certificate, in the scrapers' namespace.
		{list, IssuerRef{Kind: "Issuer", Group: certManagerGroup, Name: "rbac-proxy-scrapers"}, "monitoring", false},
		{list, *def, "monitoring", true},
	} {
		ns := tc.namespace
		if ns == "" {
			ns = "team"
		}
		if got := tc.list.Allows(tc.ref, ns); got != tc.want {
			t.Errorf("%v.Allows(%v, %s) = %v, want %v", tc.list, tc.ref, ns, got, tc.want)
		}
	}
}

// TestDNSNamesWithoutNamespace: inject -f on a manifest without a namespace can still ask for
// names under an allowed suffix, and nothing else.
func TestDNSNamesWithoutNamespace(t *testing.T) {
	d := testDefaults()
	d.DNSSuffixes = []string{"gpu.corp.example"}
	in := PolicyInput{Defaults: d, Workload: Workload{Kind: "Deployment", Name: "web"}}
	errs := &problems{}
	tls := parseTLS(map[string]string{AnnotationDNSNames: "node1.gpu.corp.example"}, in, errs)
	if err := errs.err(); err != nil || !slices.Contains(tls.Certificate.DNSNames, "node1.gpu.corp.example") {
		t.Errorf("a name under an allowed suffix: %v, names %v", err, tls.Certificate)
	}
	errs = &problems{}
	parseTLS(map[string]string{AnnotationDNSNames: "web.team.svc"}, in, errs)
	if err := errs.err(); err == nil || !strings.Contains(err.Error(), "namespace is unknown") {
		t.Errorf("a namespace name without a namespace: %v, want refused", err)
	}
}

// TestWorkloadNamesDeriveOnlyServiceNames: a workload named like a DNS name gets none of its own
// names, so a Deployment called kubernetes.default.svc cannot get that name.
func TestWorkloadNamesDeriveOnlyServiceNames(t *testing.T) {
	d := testDefaults()
	for _, tc := range []struct {
		name, workload, dnsNames string
		want                     []string
		err                      string
	}{
		{"plain", "web", "", []string{"web", "web.team.svc", "web.team.svc.cluster.local"}, ""},
		{"dotted", "kubernetes.default.svc", "", nil, "is not named like a Service"},
		{"other namespace", "vault.other.svc.cluster.local", "", nil, "is not named like a Service"},
		{"dotted with names", "login.corp.example", "login.team.svc", []string{"login.team.svc"}, ""},
		{"the API server's bare name", "kubernetes", "", []string{"kubernetes.team.svc", "kubernetes.team.svc.cluster.local"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ann := map[string]string{}
			if tc.dnsNames != "" {
				ann[AnnotationDNSNames] = tc.dnsNames
			}
			errs := &problems{}
			tls := parseTLS(ann, PolicyInput{Defaults: d, Namespace: testNamespace, Workload: Workload{Kind: "Deployment", Name: tc.workload}}, errs)
			err := errs.err()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, names %v; want an error containing %q", err, tls.Certificate.DNSNames, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(tls.Certificate.DNSNames, tc.want) {
				t.Errorf("names %v, want %v", tls.Certificate.DNSNames, tc.want)
			}
		})
	}
}

// TestHugeAnnotationsGiveBoundedMessages: a denial's message stays small whatever the Pod holds;
// one that quoted the value once per bad item grew with the square of its size.
func TestHugeAnnotationsGiveBoundedMessages(t *testing.T) {
	d := testDefaults()
	items := strings.TrimSuffix(strings.Repeat("A,", 4000), ",")
	for _, ann := range []map[string]string{
		{AnnotationDNSNames: items},
		{AnnotationResourceAttributes: items},
		{AnnotationAuthz: "static", AnnotationAllowedGroups: strings.Repeat("\"", 8000)},
		{AnnotationPortMode: "takeover", AnnotationUpstreamListen: items},
		{AnnotationAllowPaths: items},
	} {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: "web", Annotations: ann},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1", Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: 9090}}}}},
		}
		_, err := NewPolicy(pod, PolicyInput{Defaults: d, Namespace: testNamespace, Workload: PodWorkload(pod)})
		if err == nil {
			t.Errorf("%v: admitted", ann)
			continue
		}
		if n := len(err.Error()); n > 32*1024 {
			t.Errorf("a %d-byte annotation gave a %d-byte message", len(items), n)
		}
	}
}
