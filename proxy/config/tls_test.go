package config

import (
	"strings"
	"testing"
)

func TestWeakTLSFlagsWarn(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		want  []string // each must appear in one warning
		clean bool     // no TLS warning at all
	}{
		{"defaults", nil, nil, true},
		{"the default suites by name", []string{"--tls-cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"}, nil, true},
		{"TLS 1.3 minimum", []string{"--tls-min-version=VersionTLS13"}, nil, true},
		{"CBC-SHA1", []string{"--tls-cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"}, []string{"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA is weak (CBC mode"}, false},
		{"RC4 and 3DES", []string{"--tls-cipher-suites=TLS_RSA_WITH_RC4_128_SHA,TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA"},
			[]string{"TLS_RSA_WITH_RC4_128_SHA is weak (crypto/tls lists it as insecure; RC4 is broken (RFC 7465); RSA key exchange has no forward secrecy)",
				"TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA is weak (crypto/tls lists it as insecure; 3DES"}, false},
		{"RSA key exchange with GCM", []string{"--tls-cipher-suites=TLS_RSA_WITH_AES_128_GCM_SHA256"}, []string{"TLS_RSA_WITH_AES_128_GCM_SHA256 is weak (crypto/tls lists it as insecure; RSA key exchange"}, false},
		{"TLS 1.3 suite only", []string{"--tls-cipher-suites=TLS_AES_128_GCM_SHA256"}, []string{"TLS_AES_128_GCM_SHA256 is a TLS 1.3 suite", "lists only TLS 1.3 suites"}, false},
		{"TLS 1.0", []string{"--tls-min-version=VersionTLS10"}, []string{"--tls-min-version=VersionTLS10 accepts TLS versions deprecated by RFC 8996"}, false},
		{"TLS 1.1", []string{"--tls-min-version=VersionTLS11"}, []string{"--tls-min-version=VersionTLS11"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFlags("rbac-proxy")
			args := append([]string{"--secure-listen-address=127.0.0.1:0", "--upstream=http://127.0.0.1:1", "--tls-cert-file=c", "--tls-private-key-file=k", "--http2-disable"}, tc.args...)
			if err := f.Parse(args); err != nil {
				t.Fatal(err)
			}
			if _, err := f.Config(); err != nil {
				t.Fatalf("weak settings must still be accepted: %v", err)
			}
			warnings := f.Warnings()
			var tlsW []string
			for _, w := range warnings {
				if strings.Contains(w, "--tls-") {
					tlsW = append(tlsW, w)
				}
			}
			if tc.clean && len(tlsW) > 0 {
				t.Fatalf("unexpected TLS warnings: %q", tlsW)
			}
			for _, want := range tc.want {
				found := false
				for _, w := range tlsW {
					found = found || strings.Contains(w, want)
				}
				if !found {
					t.Errorf("no warning contains %q; got %q", want, tlsW)
				}
			}
		})
	}
}
