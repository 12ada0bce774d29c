package proxy

import (
	"crypto/tls"
)

// defaultCipherSuites are the TLS 1.2 suites served when --tls-cipher-suites
// is not given: ECDHE key exchange (forward secrecy) with an AEAD cipher.
// Go's own default also offers the ECDHE CBC-SHA1 suites, which are not
// AEAD (Lucky13-class padding oracles) and exist only for clients older
// than TLS 1.2's AEADs; no Prometheus or kubelet needs them. TLS 1.3 is
// always on, and its suites (all AEAD) are not configurable in crypto/tls.
var defaultCipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// servingCipherSuites is what the listeners offer for TLS 1.2: the
// configured suites, or the defaults.
func servingCipherSuites(configured []uint16) []uint16 {
	if len(configured) == 0 {
		return append([]uint16(nil), defaultCipherSuites...)
	}
	return configured
}
