package inject

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

func TestUniquePortName(t *testing.T) {
	for _, tc := range []struct {
		base string
		used []string
		want string
	}{
		{"app-metrics", nil, "app-metrics"},
		{"app-metrics", []string{"app-metrics"}, "app-metrics-2"},
		{"app-metrics", []string{"app-metrics", "app-metrics-2"}, "app-metrics-3"},
		{"app-http-metrics-01", nil, "app-http-metric"},
		{"app-http-metrics-01", []string{"app-http-metric"}, "app-http-metr-2"},
		{"app-web-", nil, "app-web"},                // no trailing dash
		{"app-a--b", nil, "app-a-b"},                // no double dash
		{"app-Metrics", nil, "app-metrics"},         // lower case
		{"app-x_y", nil, "app-x-y"},                 // no underscores
		{"app-1234567890-x", nil, "app-1234567890"}, // trailing dash trimmed after the cut
		{"rbac-proxy", []string{"rbac-proxy"}, "rbac-proxy-2"},
	} {
		used := map[string]bool{}
		for _, u := range tc.used {
			used[u] = true
		}
		got := uniquePortName(tc.base, used)
		if got != tc.want {
			t.Errorf("uniquePortName(%q, %v) = %q, want %q", tc.base, tc.used, got, tc.want)
		}
		if msgs := validation.IsValidPortName(got); len(msgs) > 0 {
			t.Errorf("%q is not a valid port name: %v", got, msgs)
		}
		if !used[got] {
			t.Errorf("%q was not marked used", got)
		}
	}
}

func TestCertificateName(t *testing.T) {
	short := CertificateName(Workload{Kind: "Deployment", Name: "web"})
	if short != "rbac-proxy-deployment-web" {
		t.Errorf("short name %q", short)
	}
	long := Workload{Kind: "StatefulSet", Name: strings.Repeat("a", 60)}
	other := Workload{Kind: "StatefulSet", Name: strings.Repeat("a", 59) + "b"}
	n1, n2 := CertificateName(long), CertificateName(other)
	if len(n1) > maxCertificateName || len(n2) > maxCertificateName {
		t.Errorf("names too long: %d, %d", len(n1), len(n2))
	}
	if n1 == n2 {
		t.Errorf("two workloads share the Certificate %q", n1)
	}
	if n1 != CertificateName(long) {
		t.Error("the name is not deterministic")
	}
	for _, n := range []string{n1, n2} {
		if msgs := validation.IsDNS1123Label(n); len(msgs) > 0 {
			t.Errorf("%q: %v", n, msgs)
		}
	}
}

func TestParseIssuer(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want *IssuerRef
	}{
		{"Issuer/ca", &IssuerRef{Kind: "Issuer", Group: "cert-manager.io", Name: "ca"}},
		{"ClusterIssuer/root-ca", &IssuerRef{Kind: "ClusterIssuer", Group: "cert-manager.io", Name: "root-ca"}},
		{"AWSPCAClusterIssuer.awspca.cert-manager.io/pca", &IssuerRef{Kind: "AWSPCAClusterIssuer", Group: "awspca.cert-manager.io", Name: "pca"}},
		{"Issuer", nil},
		{"/ca", nil},
		{"Issuer/", nil},
		{"Issuer/Bad_Name", nil},
		{"issuer/ca", nil},
		{"Certificate/ca", nil},
		{"Foo.bad_group/x", nil},
	} {
		got, problem := ParseIssuer(tc.in)
		switch {
		case tc.want == nil && problem == "":
			t.Errorf("parseIssuer(%q) = %+v, want an error", tc.in, got)
		case tc.want != nil && (problem != "" || *got != *tc.want):
			t.Errorf("parseIssuer(%q) = %+v, %q; want %+v", tc.in, got, problem, tc.want)
		}
	}
	if s := (IssuerRef{Kind: "Issuer", Group: "cert-manager.io", Name: "x"}).String(); s != "Issuer/x" {
		t.Errorf("String() = %q", s)
	}
}
