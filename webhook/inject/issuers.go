package inject

import (
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
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

// ParseIssuer parses Issuer/NAME, ClusterIssuer/NAME or KIND.GROUP/NAME; the second result says
// what is wrong, empty when nothing is.
func ParseIssuer(value string) (*IssuerRef, string) {
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

// NamespacedIssuers in allowedIssuers lets a Pod name any Issuer of its own namespace: a
// namespace's Issuers are already its own users' to use.
const NamespacedIssuers = "Issuer/*"

// IssuerAllowList is what the operator lets Pods name in rbac-proxy.io/issuer. A Pod author
// chooses among these; nothing else reaches a Certificate.
type IssuerAllowList struct {
	// Default is the webhook's default issuer, always allowed; nil when there is none.
	Default *IssuerRef
	// Named are allowed by exact kind, group and name: ClusterIssuers and external kinds only
	// ever this way.
	Named []IssuerRef
	// Namespaced allows every cert-manager Issuer of the Pod's own namespace. No Issuer of
	// ScrapersNamespace is ever allowed, by class or by name: the scrapers' CA Issuers live
	// there, and a serving certificate must never come from the CA that authenticates scrapers.
	Namespaced        bool
	ScrapersNamespace string
}

// Allows reports whether a Pod in namespace may name ref.
func (l IssuerAllowList) Allows(ref IssuerRef, namespace string) bool {
	if l.Default != nil && *l.Default == ref {
		return true
	}
	namespacedIssuer := ref.Group == certManagerGroup && ref.Kind == "Issuer"
	if namespacedIssuer && namespace == l.ScrapersNamespace {
		return false
	}
	if l.Namespaced && namespacedIssuer {
		return true
	}
	for _, n := range l.Named {
		if n == ref {
			return true
		}
	}
	return false
}

// String lists the allowed issuers for an error message.
func (l IssuerAllowList) String() string {
	var out []string
	if l.Default != nil {
		out = append(out, l.Default.String()+" (the default)")
	}
	if l.Namespaced {
		what := NamespacedIssuers + " (an Issuer of the Pod's namespace"
		if l.ScrapersNamespace != "" {
			what += ", but not in " + l.ScrapersNamespace + ", the scrapers' CA's"
		}
		out = append(out, what+")")
	}
	for _, n := range l.Named {
		out = append(out, n.String())
	}
	if len(out) == 0 {
		return "no issuer (the webhook allows none): set " + AnnotationTLSSecret
	}
	return strings.Join(out, ", ")
}
