package webhook

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
)

// requireClientNames makes the webhook server accept only client certificates whose subject
// common name is one of names: the CA that signs the API server's client certificate may sign
// others too. It runs after the chain was verified against the client CA.
func requireClientNames(names []string) func(*tls.Config) {
	return func(cfg *tls.Config) {
		cfg.VerifyPeerCertificate = func(_ [][]byte, chains [][]*x509.Certificate) error {
			if len(chains) == 0 || len(chains[0]) == 0 {
				return errors.New("no verified client certificate")
			}
			leaf := chains[0][0]
			if !slices.Contains(names, leaf.Subject.CommonName) {
				return fmt.Errorf("client certificate %q is not one of the allowed API server identities %v", leaf.Subject.CommonName, names)
			}
			return nil
		}
	}
}
