package inject

import (
	"strings"

	"golang.org/x/net/publicsuffix"
	"k8s.io/apimachinery/pkg/util/validation"
)

// apiServerService is the API server's own Service: no workload may get a certificate for it,
// not even one in its namespace.
const apiServerService, apiServerNamespace = "kubernetes", "default"

// dnsNamePolicy decides which names a workload's Certificate may carry.
type dnsNamePolicy struct {
	namespace     string
	clusterDomain string
	suffixes      []string
}

// allowed says why name may not be on a Certificate of the namespace, empty when it may.
//
// Allowed: names under NS.svc and NS.svc.<cluster domain> (a Service of the namespace and the
// names below it, as a StatefulSet's Pods have); the short form SERVICE.NS, unless NS is a public
// suffix or the name falls in the cluster's own zone; and names under a suffix the operator
// allows. Never the API server's names, nor a wildcard that covers them.
func (p dnsNamePolicy) allowed(name string) string {
	// A wildcard's "*" is matched as the one label it stands for.
	if p.underSuffix(name) {
		return ""
	}
	type zone struct {
		name  string
		short bool
	}
	var zones []zone
	if p.clusterDomain != "" {
		zones = append(zones, zone{p.namespace + ".svc." + p.clusterDomain, false})
	}
	zones = append(zones, zone{p.namespace + ".svc", false})
	if p.hasShortForm() {
		zones = append(zones, zone{p.namespace, true})
	}
	for _, z := range zones {
		rest, ok := strings.CutSuffix(name, "."+z.name)
		if !ok || rest == "" {
			continue
		}
		if p.namespace == apiServerNamespace && (rest == apiServerService || rest == "*" || strings.HasSuffix(rest, "."+apiServerService)) {
			return "the API server's name (" + apiServerService + "." + apiServerNamespace + ".svc) is never allowed"
		}
		if z.short && (strings.Contains(rest, ".") || rest == "svc" || rest == "*" || ClusterSuffix(name, p.clusterDomain)) {
			// SERVICE.NS only: anything longer, a wildcard over NS (*.local covers cluster.local), or
			// a name inside the cluster's own zone means something else.
			continue
		}
		return ""
	}
	return "outside the namespace " + p.namespace
}

// hasShortForm reports whether SERVICE.NS names belong to the namespace: not when NS is a public
// suffix (a namespace named team, io or com), where they are the internet's.
func (p dnsNamePolicy) hasShortForm() bool {
	suffix, icann := publicsuffix.PublicSuffix(p.namespace)
	return !icann || suffix != p.namespace
}

// underSuffix reports whether name lies under a suffix the operator allows; it needs no namespace.
func (p dnsNamePolicy) underSuffix(name string) bool {
	for _, s := range p.suffixes {
		if name == s || strings.HasSuffix(name, "."+s) {
			return true
		}
	}
	return false
}

// describe is the "allowed" text of an error about a DNS name.
func (p dnsNamePolicy) describe() string {
	var zones []string
	zones = append(zones, "*."+p.namespace+".svc", "NAME."+p.namespace+".svc")
	if p.clusterDomain != "" {
		zones = append(zones, "NAME."+p.namespace+".svc."+p.clusterDomain)
	}
	if p.hasShortForm() {
		zones = append(zones, "NAME."+p.namespace)
	}
	for _, s := range p.suffixes {
		zones = append(zones, "*."+s, "NAME."+s)
	}
	return "comma-separated DNS names inside the Pod's namespace or under a suffix the webhook allows: " + strings.Join(zones, ", ")
}

// ClusterSuffix reports whether suffix names the cluster's own DNS zone or a part of it (svc,
// the cluster domain, a namespace's zone), which an operator may not allow wholesale.
func ClusterSuffix(suffix, clusterDomain string) bool {
	if suffix == "svc" || strings.HasSuffix(suffix, ".svc") {
		return true
	}
	if clusterDomain == "" {
		return false
	}
	return suffix == clusterDomain || strings.HasSuffix(suffix, "."+clusterDomain) || strings.HasSuffix(clusterDomain, "."+suffix)
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
