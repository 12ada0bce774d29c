package proxy

import (
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rbac-proxy/rbac-proxy/proxy/internal/fakeapi"
)

// handshake dials the proxy with the given client TLS settings and reports
// the negotiated suite, or the handshake error.
func handshake(t *testing.T, e *testEnv, max uint16, suites []uint16) (uint16, error) {
	t.Helper()
	conf := &tls.Config{RootCAs: e.ca.Pool(), MaxVersion: max, CipherSuites: suites, NextProtos: []string{"http/1.1"}}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", strings.TrimPrefix(e.base, "https://"), conf)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	return conn.ConnectionState().CipherSuite, nil
}

func TestServingCipherSuites(t *testing.T) {
	cbcSHA1 := []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
		tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
	}
	rc4 := []uint16{tls.TLS_ECDHE_ECDSA_WITH_RC4_128_SHA}
	aead := []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}
	type dial struct {
		name   string
		max    uint16
		suites []uint16
		ok     bool
	}
	for _, tc := range []struct {
		name  string
		flags []string
		dials []dial
	}{
		{"defaults", nil, []dial{
			{"TLS 1.2, CBC-SHA1 suites only", tls.VersionTLS12, cbcSHA1, false},
			{"TLS 1.2, RC4 only", tls.VersionTLS12, rc4, false},
			{"TLS 1.2, ECDHE AES-GCM", tls.VersionTLS12, aead, true},
			{"TLS 1.2, ECDHE ChaCha20", tls.VersionTLS12, []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}, true},
			{"TLS 1.3", tls.VersionTLS13, nil, true},
		}},
		{"a CBC-SHA1 suite by flag", []string{"--tls-cipher-suites=TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"}, []dial{
			{"TLS 1.2, CBC-SHA1 suites only", tls.VersionTLS12, cbcSHA1, true},
			{"TLS 1.2, ECDHE AES-256-GCM (not listed)", tls.VersionTLS12, []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}, false},
			{"TLS 1.3", tls.VersionTLS13, nil, true},
		}},
		{"a CBC-SHA1 suite alone, without HTTP/2", []string{"--tls-cipher-suites=TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "--http2-disable"}, []dial{
			{"TLS 1.2, CBC-SHA1 suites only", tls.VersionTLS12, cbcSHA1, true},
			{"TLS 1.2, ECDHE AES-GCM (not listed)", tls.VersionTLS12, aead, false},
		}},
		{"RC4 by flag", []string{"--tls-cipher-suites=TLS_ECDHE_ECDSA_WITH_RC4_128_SHA,TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"}, []dial{
			{"TLS 1.2, RC4 only", tls.VersionTLS12, rc4, true},
			{"TLS 1.2, ECDHE AES-GCM", tls.VersionTLS12, aead, true},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			e.start(fakeapi.New(t), tc.flags...)
			for _, d := range tc.dials {
				suite, err := handshake(t, e, d.max, d.suites)
				if (err == nil) != d.ok {
					t.Errorf("%s: handshake error %v, want success=%v", d.name, err, d.ok)
				}
				if err == nil && d.max == tls.VersionTLS12 && !contains(d.suites, suite) {
					t.Errorf("%s: negotiated %s, not offered", d.name, tls.CipherSuiteName(suite))
				}
			}
		})
	}
}

func contains(ids []uint16, id uint16) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}
