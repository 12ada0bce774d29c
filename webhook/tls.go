package webhook

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

const (
	certManagerGroup = "cert-manager.io"
	issuerAllowed    = "Issuer/NAME, ClusterIssuer/NAME or KIND.GROUP/NAME"
	// defaultCAKey is the key holding a CA bundle in cert-manager Secrets and kube-root-ca.crt.
	defaultCAKey = "ca.crt"
)

// IssuerRef names the cert-manager issuer that signs a Certificate.
type IssuerRef struct {
	Kind  string
	Group string
	Name  string
}

func (r IssuerRef) String() string {
	if r.Group == certManagerGroup {
		return r.Kind + "/" + r.Name
	}
	return r.Kind + "." + r.Group + "/" + r.Name
}

// parseIssuer parses Issuer/NAME, ClusterIssuer/NAME or KIND.GROUP/NAME; the second result says
// what is wrong, empty when nothing is.
func parseIssuer(value string) (*IssuerRef, string) {
	kind, name, ok := strings.Cut(value, "/")
	if !ok || kind == "" || name == "" {
		return nil, "not KIND/NAME"
	}
	if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
		return nil, "bad name: " + strings.Join(msgs, "; ")
	}
	ref := &IssuerRef{Kind: kind, Group: certManagerGroup, Name: name}
	if k, group, ok := strings.Cut(kind, "."); ok {
		if msgs := validation.IsDNS1123Subdomain(group); len(msgs) > 0 {
			return nil, "bad group: " + strings.Join(msgs, "; ")
		}
		ref.Kind, ref.Group = k, group
	}
	if !isKindName(ref.Kind) {
		return nil, "bad kind " + ref.Kind
	}
	if ref.Group == certManagerGroup && ref.Kind != "Issuer" && ref.Kind != "ClusterIssuer" {
		return nil, "cert-manager.io has only Issuer and ClusterIssuer"
	}
	return ref, ""
}

func isKindName(s string) bool {
	if s == "" || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// ClientCASource says where the proxy's client CA bundle comes from.
type ClientCASource string

const (
	// ClientCAIssuer is the ca.crt key of the proxy's own TLS Secret.
	ClientCAIssuer    ClientCASource = "issuer"
	ClientCAConfigMap ClientCASource = "configmap"
	ClientCASecret    ClientCASource = "secret"
)

// ClientCA turns on client-certificate authentication in the proxy.
type ClientCA struct {
	Source ClientCASource
	// Name and Key locate the bundle for configmap and secret; unused for issuer.
	Name string
	Key  string
}

const clientCAAllowed = "issuer, configmap:NAME[/KEY], secret:NAME[/KEY] (KEY defaults to ca.crt)"

func parseClientCA(value string) (*ClientCA, string) {
	if value == string(ClientCAIssuer) {
		return &ClientCA{Source: ClientCAIssuer}, ""
	}
	source, rest, ok := strings.Cut(value, ":")
	if !ok || (source != string(ClientCAConfigMap) && source != string(ClientCASecret)) {
		return nil, "unknown source"
	}
	name, key, hasKey := strings.Cut(rest, "/")
	if !hasKey {
		key = defaultCAKey
	}
	if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
		return nil, "bad name: " + strings.Join(msgs, "; ")
	}
	if msgs := validation.IsConfigMapKey(key); len(msgs) > 0 {
		return nil, "bad key: " + strings.Join(msgs, "; ")
	}
	return &ClientCA{Source: ClientCASource(source), Name: name, Key: key}, ""
}

// TLSPolicy says where the proxy's serving certificate comes from.
type TLSPolicy struct {
	// SecretName is the Secret mounted into the proxy (tls.crt, tls.key and, for client-ca
	// issuer, ca.crt).
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

// CertificateName is the name of the Certificate (and its Secret) for a workload:
// rbac-proxy-<kind>-<name>, shortened with a hash suffix when it would be too long.
func CertificateName(w Workload) string {
	name := "rbac-proxy-" + strings.ToLower(w.Kind) + "-" + w.Name
	if len(name) <= maxCertificateName {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	suffix := "-" + hex.EncodeToString(sum[:])[:10]
	return strings.TrimRight(name[:maxCertificateName-len(suffix)], "-.") + suffix
}

// workloadDNSNames are the names the workload is reached by when a Service carries its name.
func workloadDNSNames(name, namespace, clusterDomain string) []string {
	if namespace == "" {
		return []string{name}
	}
	names := []string{name, name + "." + namespace, name + "." + namespace + ".svc"}
	if clusterDomain != "" {
		names = append(names, name+"."+namespace+".svc."+clusterDomain)
	}
	return names
}

func isDNSName(s string) bool {
	if strings.HasPrefix(s, "*.") {
		return len(validation.IsWildcardDNS1123Subdomain(s)) == 0
	}
	return len(validation.IsDNS1123Subdomain(s)) == 0
}

// parseTLS reads tls-secret, issuer and dns-names.
func parseTLS(annotations map[string]string, in PolicyInput, errs *errorList) TLSPolicy {
	secret, hasSecret := annotations[AnnotationTLSSecret]
	issuer, hasIssuer := annotations[AnnotationIssuer]
	dnsNames, hasDNS := annotations[AnnotationDNSNames]

	if hasSecret {
		ok := true
		if msgs := validation.IsDNS1123Subdomain(secret); len(msgs) > 0 {
			errs.add(AnnotationTLSSecret, secret, "not a Secret name: "+strings.Join(msgs, "; "), "a Secret name with keys tls.crt and tls.key")
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
	switch {
	case hasIssuer:
		ref, problem := parseIssuer(issuer)
		if problem != "" {
			errs.add(AnnotationIssuer, issuer, problem, issuerAllowed)
		} else {
			cert.Issuer = *ref
		}
	case in.Defaults.Issuer != nil:
		cert.Issuer = *in.Defaults.Issuer
	default:
		errs.addUnset(AnnotationIssuer, "the webhook has no default issuer", issuerAllowed+", or set "+AnnotationTLSSecret)
	}
	cert.DNSNames = workloadDNSNames(in.Workload.Name, in.Namespace, in.Defaults.ClusterDomain)
	if hasDNS {
		items, ok := splitList(dnsNames)
		if !ok {
			errs.add(AnnotationDNSNames, dnsNames, "empty item", "comma-separated DNS names")
		}
		for _, n := range items {
			if !isDNSName(n) {
				errs.add(AnnotationDNSNames, dnsNames, "not a DNS name: "+n, "comma-separated DNS names, *. wildcards allowed")
				continue
			}
			cert.DNSNames = appendUnique(cert.DNSNames, n)
		}
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
