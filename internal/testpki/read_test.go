package testpki

import (
	"strings"
	"testing"
)

func TestVerifyServing(t *testing.T) {
	ca, err := NewCA("root")
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewCA("other")
	if err != nil {
		t.Fatal(err)
	}
	serving := must(ca.Server("exporter.team.svc"))
	client := must(ca.Client("scraper"))
	for _, tc := range []struct {
		name          string
		cert, caPEM   []byte
		dnsName, fail string // fail: "" when it verifies
	}{
		{"serving certificate", serving.CertPEM, ca.CertPEM, "exporter.team.svc", ""},
		{"another name", serving.CertPEM, ca.CertPEM, "other.team.svc", "SANs [exporter.team.svc]"},
		{"another CA", serving.CertPEM, other.CertPEM, "exporter.team.svc", "unknown authority"},
		{"client certificate", client.CertPEM, ca.CertPEM, "", "usage"},
		{"a key, not a certificate", serving.KeyPEM, ca.CertPEM, "exporter.team.svc", "the certificate: no PEM certificate"},
		{"no CA", serving.CertPEM, nil, "exporter.team.svc", "the CA: no PEM certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leaf, root, err := VerifyServing(tc.cert, tc.caPEM, tc.dnsName)
			if tc.fail == "" {
				if err != nil || leaf == nil || root == nil || root.Subject.CommonName != "root" {
					t.Fatalf("VerifyServing = %v, %v, %v; want both certificates and no error", leaf, root, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.fail) {
				t.Fatalf("VerifyServing error %v, want one containing %q", err, tc.fail)
			}
		})
	}
}

func TestPoolFromPEM(t *testing.T) {
	ca, err := NewCA("root")
	if err != nil {
		t.Fatal(err)
	}
	serving := must(ca.Server("127.0.0.1"))
	for _, tc := range []struct {
		name string
		data []byte
		ok   bool
	}{
		{"a CA", ca.CertPEM, true},
		{"nothing", nil, false},
		{"a key", serving.KeyPEM, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool, err := PoolFromPEM(tc.data)
			if (err == nil) != tc.ok || (pool != nil) != tc.ok {
				t.Fatalf("PoolFromPEM = %v, %v; want ok=%v", pool, err, tc.ok)
			}
		})
	}
}

func must(p Pair, err error) Pair {
	if err != nil {
		panic(err)
	}
	return p
}
