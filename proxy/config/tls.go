package config

import (
	"crypto/tls"
	"fmt"
	"strings"

	cliflag "k8s.io/component-base/cli/flag"
)

// tlsWarnings names, one warning each, the TLS versions and cipher suites
// given by flag that are weaker than the defaults. They are accepted, as
// kube-rbac-proxy accepts them, so that a deployment that needs one keeps
// working; the warning is the only difference. Unknown names are left to
// Flags.Config, which refuses them.
func tlsWarnings(minVersion string, suites []string) []string {
	var w []string
	switch minVersion {
	case "VersionTLS10", "VersionTLS11":
		w = append(w, fmt.Sprintf("--tls-min-version=%s accepts TLS versions deprecated by RFC 8996 (TLS 1.0 and 1.1); the default is VersionTLS12", minVersion))
	}
	insecure := map[uint16]bool{}
	for _, s := range tls.InsecureCipherSuites() {
		insecure[s.ID] = true
	}
	tls13 := map[uint16]bool{}
	for _, s := range tls.CipherSuites() {
		if len(s.SupportedVersions) == 1 && s.SupportedVersions[0] == tls.VersionTLS13 {
			tls13[s.ID] = true
		}
	}
	only13 := len(suites) > 0
	for _, name := range suites {
		ids, err := cliflag.TLSCipherSuites([]string{name})
		if err != nil || len(ids) != 1 {
			continue
		}
		id := ids[0]
		if tls13[id] {
			w = append(w, fmt.Sprintf("--tls-cipher-suites: %s is a TLS 1.3 suite; TLS 1.3 suites are always enabled and cannot be chosen, so listing it changes nothing", name))
			continue
		}
		only13 = false
		var why []string
		if insecure[id] {
			why = append(why, "crypto/tls lists it as insecure")
		}
		switch {
		case strings.Contains(name, "_RC4_"):
			why = append(why, "RC4 is broken (RFC 7465)")
		case strings.Contains(name, "_3DES_"):
			why = append(why, "3DES has a 64-bit block (Sweet32)")
		case strings.Contains(name, "_CBC_"):
			why = append(why, "CBC mode is not AEAD (padding-oracle attacks such as Lucky13)")
		}
		if strings.HasPrefix(name, "TLS_RSA_") {
			why = append(why, "RSA key exchange has no forward secrecy")
		}
		if len(why) == 0 {
			continue // one of the defaults
		}
		w = append(w, fmt.Sprintf("--tls-cipher-suites: %s is weak (%s); it is accepted for compatibility, the default is ECDHE with AES-GCM or ChaCha20-Poly1305", name, strings.Join(why, "; ")))
	}
	if only13 && minVersion != "VersionTLS13" {
		w = append(w, "--tls-cipher-suites lists only TLS 1.3 suites: TLS 1.2 clients find no common suite and fail the handshake")
	}
	return w
}
