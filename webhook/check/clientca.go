package check

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"

	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// ruleClientCA: a proxy's client CA bundle must not hold the CA of any cert-manager serving
// Secret of its namespace (or its own serving Secret's): anyone allowed a serving certificate
// from that issuer could pose as a scraper.
func ruleClientCA(a *analysis, x *assessed) {
	if !x.protected() || x.policy.ClientCA == nil {
		return
	}
	ca := x.policy.ClientCA
	source := ca.Source
	if source == inject.ClientCAScrapers {
		source = inject.ClientCAConfigMap
	}
	var bundle []byte
	for _, b := range a.snap.ClientCAs {
		if b.Namespace == x.ref.Namespace && b.Source == ca.Source && b.Name == ca.Name && b.Key == ca.Key && b.Found {
			bundle = b.PEM
		}
	}
	trusted := certificates(bundle)
	if len(trusted) == 0 {
		return
	}
	for _, s := range a.snap.ServingCAs {
		if s.Namespace != x.ref.Namespace {
			continue
		}
		for _, servingCA := range certificates(s.CA) {
			for _, t := range trusted {
				if !bytes.Equal(t.Raw, servingCA.Raw) {
					continue
				}
				where := x.templateField("metadata.annotations")
				a.find(CodeClientCATrustsServingCA, x.ref, x,
					fmt.Sprintf("the client CA of %s %s (%s %s key %s, from %s=%s) holds %q, the CA of serving Secret %s: anyone allowed a certificate from its issuer could pose as a scraper", x.ref.Kind, x.ref.Name, source, ca.Name, ca.Key, inject.AnnotationClientCA, x.subject.Annotations[inject.AnnotationClientCA], t.Subject.String(), s.Secret),
					fmt.Sprintf("set %s: %s in %s (a CA that signs scrapers only)", inject.AnnotationClientCA, inject.ClientCAScrapers, where))
				return
			}
		}
	}
}

// certificates parses the PEM certificates of a bundle, skipping what is not one.
func certificates(data []byte) []*x509.Certificate {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return out
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		if c, err := x509.ParseCertificate(block.Bytes); err == nil {
			out = append(out, c)
		}
	}
}
