package inject

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

const (
	certManagerGroup = "cert-manager.io"
	IssuerSyntax     = "Issuer/NAME, ClusterIssuer/NAME or KIND.GROUP/NAME"
	// CAKey is the key holding a CA bundle in cert-manager Secrets and kube-root-ca.crt.
	CAKey = "ca.crt"
)

// ClientCASource says where the proxy's client CA bundle comes from.
type ClientCASource string

const (
	// ClientCAScrapers is the webhook's dedicated CA of scrapers' client certificates, published
	// by the injector as the ConfigMap ScrapersCAConfigMap in the Pod's namespace.
	ClientCAScrapers  ClientCASource = "scrapers"
	ClientCAConfigMap ClientCASource = "configmap"
	ClientCASecret    ClientCASource = "secret"
	// clientCAIssuer was the ca.crt of the proxy's own serving Secret: the CA that signs every
	// workload's serving certificate, so anyone allowed a Certificate could pose as a scraper.
	clientCAIssuer = "issuer"
)

// ScrapersCAConfigMap is the ConfigMap the injector keeps in each namespace with a Pod that
// trusts the scrapers' CA; its key ca.crt is that CA's certificate.
const ScrapersCAConfigMap = "rbac-proxy-scrapers-ca"

// ClientCA turns on client-certificate authentication in the proxy.
type ClientCA struct {
	Source ClientCASource
	// Name and Key locate the bundle in the Pod's namespace.
	Name string
	Key  string
}

// ParseClientCA reads rbac-proxy.io/client-ca; scrapers is refused when the webhook has no
// scrapers' CA.
func ParseClientCA(value string, d *Defaults) (*ClientCA, string) {
	switch value {
	case string(ClientCAScrapers):
		if d.ScrapersCA == nil {
			return nil, "the webhook has no scrapers' CA (scrapersCASecret)"
		}
		return &ClientCA{Source: ClientCAScrapers, Name: ScrapersCAConfigMap, Key: CAKey}, ""
	case clientCAIssuer:
		return nil, "no longer allowed: it trusted the CA that signs every workload's serving certificate, so anyone allowed a Certificate could pose as a scraper; use scrapers"
	}
	source, rest, ok := strings.Cut(value, ":")
	if !ok || (source != string(ClientCAConfigMap) && source != string(ClientCASecret)) {
		return nil, "unknown source"
	}
	name, key, hasKey := strings.Cut(rest, "/")
	if !hasKey {
		key = CAKey
	}
	if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
		return nil, "bad name: " + strings.Join(msgs, "; ")
	}
	if msgs := validation.IsConfigMapKey(key); len(msgs) > 0 {
		return nil, "bad key: " + strings.Join(msgs, "; ")
	}
	return &ClientCA{Source: ClientCASource(source), Name: name, Key: key}, ""
}

// ParseTLS reads the TLS annotations alone (tls-secret, issuer, dns-names) as NewPolicy does:
// the certificate controller reads them from a workload's stored Pod template.
func ParseTLS(annotations map[string]string, in PolicyInput) (TLSPolicy, error) {
	errs := &problems{}
	tls := parseTLS(annotations, in, errs)
	return tls, errs.err()
}

// TLSPolicy says where the proxy's serving certificate comes from.
type TLSPolicy struct {
	// SecretName is the Secret mounted into the proxy (tls.crt and tls.key).
	SecretName string
	// Certificate, when set, is the cert-manager Certificate the webhook ensures for the workload;
	// nil when the Pod names its own Secret.
	Certificate *CertificatePolicy
}

// CertificatePolicy is what the workload's Certificate looks like.
type CertificatePolicy struct {
	Name     string
	Issuer   IssuerRef
	DNSNames []string
}

// maxCertificateName keeps Certificate and Secret names short enough to be used as label values.
const maxCertificateName = validation.DNS1123LabelMaxLength

// servingSecretPrefix starts the name of every Certificate and Secret the injector makes.
const servingSecretPrefix = "rbac-proxy-"

// CertificateName is the name of the Certificate (and its Secret) for a workload:
// rbac-proxy-<kind>-<name>, shortened with a hash suffix when it would be too long.
func CertificateName(w Workload) string {
	name := servingSecretPrefix + strings.ToLower(w.Kind) + "-" + w.Name
	if len(name) <= maxCertificateName {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	suffix := "-" + hex.EncodeToString(sum[:])[:10]
	return strings.TrimRight(name[:maxCertificateName-len(suffix)], "-.") + suffix
}

// parseTLS reads tls-secret, issuer and dns-names.
func parseTLS(annotations map[string]string, in PolicyInput, errs *problems) TLSPolicy {
	secret, hasSecret := annotations[AnnotationTLSSecret]
	issuer, hasIssuer := annotations[AnnotationIssuer]
	dnsNames, hasDNS := annotations[AnnotationDNSNames]

	if hasSecret {
		ok := true
		if msgs := validation.IsDNS1123Subdomain(secret); len(msgs) > 0 {
			errs.add(AnnotationTLSSecret, secret, "not a Secret name: "+strings.Join(msgs, "; "), AllowedOf(AnnotationTLSSecret))
			ok = false
		}
		if hasIssuer {
			errs.add(AnnotationIssuer, issuer, "conflicts with "+AnnotationTLSSecret+": the webhook creates no Certificate for an existing Secret", "unset when "+AnnotationTLSSecret+" is set")
			ok = false
		}
		if hasDNS {
			errs.add(AnnotationDNSNames, dnsNames, "conflicts with "+AnnotationTLSSecret+": the webhook creates no Certificate for an existing Secret", "unset when "+AnnotationTLSSecret+" is set")
			ok = false
		}
		if !ok {
			return TLSPolicy{}
		}
		return TLSPolicy{SecretName: secret}
	}

	cert := &CertificatePolicy{Name: CertificateName(in.Workload)}
	allowedIssuers := in.Defaults.AllowedIssuers
	switch {
	case hasIssuer:
		ref, problem := ParseIssuer(issuer)
		switch {
		case problem != "":
			errs.add(AnnotationIssuer, issuer, problem, AllowedOf(AnnotationIssuer)+": "+allowedIssuers.String())
		case !allowedIssuers.Allows(*ref, in.Namespace):
			errs.add(AnnotationIssuer, issuer, "not an issuer the webhook allows Pods to name", allowedIssuers.String())
		default:
			cert.Issuer = *ref
		}
	case in.Defaults.Issuer != nil:
		cert.Issuer = *in.Defaults.Issuer
	default:
		errs.addUnset(AnnotationIssuer, "the webhook has no default issuer", allowedIssuers.String())
	}
	names := dnsNamePolicy{namespace: in.Namespace, clusterDomain: in.Defaults.ClusterDomain, suffixes: in.Defaults.DNSSuffixes}
	if in.Namespace == apiServerNamespace && in.Workload.Name == apiServerService {
		errs.addUnset(AnnotationTLSSecret, in.Workload.Kind+" "+apiServerService+" in "+apiServerNamespace+" would get the API server's names", "a workload of another name, or an existing Secret in "+AnnotationTLSSecret)
	}
	// The workload's own names are those of a Service named after it, so only a name that can be
	// a Service's (a DNS-1035 label) derives any: a Deployment named kubernetes.default.svc must
	// not get that name. The bare name is a single label, resolvable only through the search path;
	// "kubernetes" is the API server's. Every other derived name is checked as dns-names are.
	derived := in.Workload.Name != "" && len(validation.IsDNS1035Label(in.Workload.Name)) == 0
	if derived {
		for _, n := range workloadDNSNames(in.Workload.Name, in.Namespace, in.Defaults.ClusterDomain) {
			switch {
			case n == in.Workload.Name && n == apiServerService:
			case n == in.Workload.Name, in.Namespace != "" && names.allowed(n) == "":
				cert.DNSNames = appendUnique(cert.DNSNames, n)
			}
		}
	}
	if hasDNS {
		items, ok := splitList(dnsNames)
		if !ok {
			errs.add(AnnotationDNSNames, dnsNames, "empty item", names.describe())
		}
		var refusedNames []string
		for _, n := range items {
			if !isDNSName(n) {
				errs.add(AnnotationDNSNames, dnsNames, "not a DNS name: "+n, names.describe()+"; *. wildcards allowed")
				continue
			}
			if in.Namespace == "" && !names.underSuffix(n) {
				errs.add(AnnotationDNSNames, dnsNames, "the Pod's namespace is unknown, so "+n+" cannot be checked against it", "set metadata.namespace, or only names under a suffix the webhook allows")
				continue
			}
			if problem := names.allowed(n); problem != "" {
				refusedNames = append(refusedNames, n+" ("+problem+")")
				continue
			}
			cert.DNSNames = appendUnique(cert.DNSNames, n)
		}
		if n := len(refusedNames); n > 0 {
			if n > 5 {
				refusedNames = append(refusedNames[:5], fmt.Sprintf("and %d more", n-5))
			}
			errs.add(AnnotationDNSNames, dnsNames, "names the webhook does not allow: "+strings.Join(refusedNames, ", "), names.describe())
		}
	}
	if len(cert.DNSNames) == 0 {
		errs.addUnset(AnnotationDNSNames, in.Workload.Kind+" "+shorten(in.Workload.Name)+" is not named like a Service (a DNS-1035 label), so its Certificate would have no name", "the names the proxy is reached by, or an existing Secret in "+AnnotationTLSSecret)
	}
	return TLSPolicy{SecretName: cert.Name, Certificate: cert}
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}
