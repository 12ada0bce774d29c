package inject

import (
	"strconv"
	"strings"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
)

// The proxy's flags the render writes. The annotation table (Annotations) refers to these names,
// and proxyArgs is the one place a Policy becomes flags.
const (
	FlagSecureListenAddress        = "--secure-listen-address"
	FlagUpstream                   = "--upstream"
	FlagUpstreamInsecureSkipVerify = "--upstream-insecure-skip-verify"
	FlagTLSCertFile                = "--tls-cert-file"
	FlagTLSPrivateKeyFile          = "--tls-private-key-file"
	FlagClientCAFile               = "--client-ca-file"
	FlagAuthTokenAudiences         = "--auth-token-audiences"
	FlagAllowPaths                 = "--allow-paths"
	FlagIgnorePaths                = "--ignore-paths"
	FlagAuthz                      = "--authz"
	FlagAllowedUsers               = "--allowed-users"
	FlagAllowedGroups              = "--allowed-groups"
	FlagResourceAttributes         = "--resource-attributes"
	FlagProxyEndpointsPort         = "--proxy-endpoints-port"
	FlagProbePassthrough           = "--probe-passthrough"
	FlagVerbosity                  = "-v"
)

// Paths inside the proxy container.
const (
	tlsMountPath      = "/etc/rbac-proxy/tls"
	clientCAMountPath = "/etc/rbac-proxy/client-ca"
	tokenMountPath    = "/var/run/secrets/kubernetes.io/serviceaccount"
)

// proxyArgs renders the proxy's command line from the policy.
func proxyArgs(p *Policy) []string {
	args := []string{
		FlagSecureListenAddress + "=0.0.0.0:" + strconv.Itoa(int(p.ProxyPort)),
		FlagUpstream + "=" + p.UpstreamScheme + "://127.0.0.1:" + strconv.Itoa(int(p.UpstreamPort)) + "/",
	}
	if p.UpstreamScheme == SchemeHTTPS {
		args = append(args, FlagUpstreamInsecureSkipVerify)
	}
	args = append(args,
		FlagTLSCertFile+"="+tlsMountPath+"/tls.crt",
		FlagTLSPrivateKeyFile+"="+tlsMountPath+"/tls.key",
	)
	if p.ClientCA != nil {
		args = append(args, FlagClientCAFile+"="+clientCAMountPath+"/"+CAKey)
	}
	lists := policyLists(p)
	list := func(flag string) {
		for _, l := range lists {
			if l.Flag == flag && len(l.Values) > 0 {
				args = append(args, flag+"="+strings.Join(l.Values, ","))
			}
		}
	}
	list(FlagAuthTokenAudiences)
	list(FlagAllowPaths)
	list(FlagIgnorePaths)
	args = append(args, FlagAuthz+"="+string(p.Authz))
	list(FlagAllowedUsers)
	list(FlagAllowedGroups)
	if ra := p.ResourceAttributes; ra != nil {
		var kv []string
		for _, k := range resourceAttributeKeys(ra) {
			if *k.value != "" {
				kv = append(kv, k.key+"="+*k.value)
			}
		}
		args = append(args, FlagResourceAttributes+"="+strings.Join(kv, ","))
	}
	args = append(args, FlagProxyEndpointsPort+"="+strconv.Itoa(int(p.EndpointsPort)))
	args = append(args, probeFlags(p.Probes)...)
	if p.Verbosity > 0 {
		args = append(args, FlagVerbosity+"="+strconv.Itoa(p.Verbosity))
	}
	return args
}

// policyList is one of the Policy's lists and the proxy flag it is rendered to, comma-joined.
type policyList struct {
	Flag   string
	Values []string
}

// policyLists are the Policy's lists by flag. proxyArgs renders them from here and
// checkProxyArgs compares the proxy's reading of the rendered flags with them, so the two cannot
// disagree about which list goes to which flag.
func policyLists(p *Policy) []policyList {
	return []policyList{
		{FlagAuthTokenAudiences, p.TokenAudiences},
		{FlagAllowPaths, p.AllowPaths},
		{FlagIgnorePaths, p.IgnorePaths},
		{FlagAllowedUsers, p.AllowedUsers},
		{FlagAllowedGroups, p.AllowedGroups},
	}
}

func probeFlags(probes []config.ProbePassthrough) []string {
	out := make([]string, len(probes))
	for i, pt := range probes {
		out[i] = FlagProbePassthrough + "=" + pt.String()
	}
	return out
}
