package scrapeconfig

import (
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// Where a Prometheus finds the files of a plain scrape_config and of the scrape class: Secrets
// where prometheus-operator mounts those its Prometheus' spec.secrets names, tokens in a folder
// per audience.
const (
	SecretsDir = "/etc/prometheus/secrets"
	TokensDir  = "/var/run/secrets/rbac-proxy"
)

// SecretFile is where key of Secret name is.
func SecretFile(name, key string) string { return SecretsDir + "/" + name + "/" + key }

// CAFile is where the serving CA is.
func (s *Scrape) CAFile() string { return SecretFile(s.CASecret, inject.CAKey) }

// ClientCertFile is where Prometheus reads the client certificate: its Secret, in the
// Prometheus' namespace, mounted from spec.secrets.
func (s *Scrape) ClientCertFile() string { return SecretFile(s.ClientCertSecret, corev1.TLSCertKey) }

// ClientKeyFile is where Prometheus reads the client certificate's key, beside it.
func (s *Scrape) ClientKeyFile() string {
	return SecretFile(s.ClientCertSecret, corev1.TLSPrivateKeyKey)
}

// ScrapeClassName names the Prometheus' scrape class that carries the credentials a monitor
// cannot name itself: the token file, or the client certificate's files.
func (s *Scrape) ScrapeClassName() string {
	if s.Auth == AuthCert {
		return "rbac-proxy-client-" + s.ClientCertSecret
	}
	return s.TokenName()
}

// notInLabel are the runs of characters a DNS label cannot have.
var notInLabel = regexp.MustCompile(`[^a-z0-9]+`)

// TokenName names the scrape class, the projected volume and its folder of the token of the
// Scrape's audience.
func (s *Scrape) TokenName() string {
	name := notInLabel.ReplaceAllString(strings.ToLower("rbac-proxy-"+strings.TrimPrefix(s.Audience, inject.LocalAudiencePrefix)), "-")
	if len(name) > validation.DNS1123LabelMaxLength {
		name = name[:validation.DNS1123LabelMaxLength]
	}
	return strings.Trim(name, "-")
}

// TokenFile is where the projected token of the audience is.
func (s *Scrape) TokenFile() string { return TokensDir + "/" + s.TokenName() + "/token" }
