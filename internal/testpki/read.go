package testpki

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// ParseCertificate parses the first PEM certificate in data, as in a Secret's tls.crt or ca.crt.
func ParseCertificate(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("no PEM certificate in %q", data)
	}
	return x509.ParseCertificate(block.Bytes)
}

// PoolFromPEM is a pool of the PEM certificates in data; none is an error, so that a test never
// trusts an empty pool by mistake.
func PoolFromPEM(data []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, errors.New("no PEM certificate to trust")
	}
	return pool, nil
}

// VerifyServing checks that certPEM is a serving certificate for dnsName issued by the CA in
// caPEM, as cert-manager writes them into a Secret, and returns both parsed (the ones it could
// parse, when it fails).
func VerifyServing(certPEM, caPEM []byte, dnsName string) (leaf, ca *x509.Certificate, err error) {
	if ca, err = ParseCertificate(caPEM); err != nil {
		return nil, nil, fmt.Errorf("the CA: %w", err)
	}
	if leaf, err = ParseCertificate(certPEM); err != nil {
		return nil, ca, fmt.Errorf("the certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	opts := x509.VerifyOptions{Roots: pool, DNSName: dnsName, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	if _, err := leaf.Verify(opts); err != nil {
		return leaf, ca, fmt.Errorf("%w (SANs %v)", err, leaf.DNSNames)
	}
	return leaf, ca, nil
}
