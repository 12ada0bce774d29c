package inject

import (
	"encoding/json"
	"net"
	"net/url"
	"slices"
	"strconv"

	"k8s.io/utils/lru"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
)

// Paths inside the proxy container.
const (
	tlsMountPath      = "/etc/rbac-proxy/tls"
	clientCAMountPath = "/etc/rbac-proxy/client-ca"
	tokenMountPath    = "/var/run/secrets/kubernetes.io/serviceaccount"
)

// proxyDefaults is config.Default, built once: it builds the proxy's whole flag set, which costs
// more than the rest of a Pod's policy. ProxyConfig starts from a copy; the defaults hold no
// list or pointer that it changes rather than replaces (TestProxyDefaultsCopy).
var proxyDefaults = *config.Default()

// ProxyConfig is the proxy's configuration the policy asks for: the flags' defaults
// (config.Default) and what the annotations and the webhook's defaults set. The render gives
// the proxy config.Args of it; nothing in the webhook writes a flag name.
func (p *Policy) ProxyConfig() *config.Config {
	c := new(config.Config)
	*c = proxyDefaults
	c.Listen.SecureAddress = net.JoinHostPort("0.0.0.0", strconv.Itoa(int(p.ProxyPort)))
	c.Listen.ProxyEndpointsPort = int(p.EndpointsPort)
	c.Listen.ProbePassthrough = p.Probes
	c.Upstream.URL = &url.URL{Scheme: p.UpstreamScheme, Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(int(p.UpstreamPort))), Path: "/"}
	// The app's own certificate on loopback is not the proxy's to verify; the proxy allows
	// skipping it for a loopback upstream only.
	c.Upstream.InsecureSkipVerify = p.UpstreamScheme == SchemeHTTPS
	c.TLS.CertFile, c.TLS.KeyFile = tlsMountPath+"/tls.crt", tlsMountPath+"/tls.key"
	if p.ClientCA != nil {
		c.TLS.ClientCAFile = clientCAMountPath + "/" + CAKey
	}
	c.Authentication.Audiences = p.TokenAudiences
	if p.TokenVerification != "" {
		c.Authentication.ServiceAccounts.Verification = p.TokenVerification
	}
	c.Paths.Allow, c.Paths.Ignore = p.AllowPaths, p.IgnorePaths
	c.Authorization.Mode = p.Authz
	c.Authorization.Allowed = config.AllowedSubjects{Users: p.AllowedUsers, Groups: p.AllowedGroups}
	c.Authorization.ResourceAttributes = p.ResourceAttributes
	c.Authorization.Tenancy.Mode = p.Tenancy
	if p.TenancyNamespaceLabels != nil {
		c.Authorization.Tenancy.NamespaceLabels = p.TenancyNamespaceLabels
	}
	c.Log.Verbosity = p.Verbosity
	return c
}

// proxyArgs is the proxy's command line for the policy: its ProxyConfig, validated by the
// proxy's own validation and rendered by config.Args (which reads it back before it returns
// it). What the proxy would refuse, or no command line carries, denies the Pod: a proxy that
// exits on its flags never lets the Pod run (a native sidecar holds the whole Pod back for ever).
// The parsers have asked the proxy about each annotation already, to name it in a denial; this
// is the whole configuration's check.
func proxyArgs(p *Policy, errs *problems) []string {
	const allowed = "annotations whose settings the proxy accepts"
	c := p.ProxyConfig()
	key, err := json.Marshal(c)
	if err == nil {
		if r, ok := rendered.Get(string(key)); ok && config.Diff(r.(renderedArgs).config, c) == "" {
			return slices.Clone(r.(renderedArgs).args)
		}
	}
	if err := c.Validate(); err != nil {
		errs.add(AnnotationInject, "true", "the proxy would refuse to start: "+err.Error(), allowed)
		return nil
	}
	args, err := config.Args(c)
	if err != nil {
		errs.add(AnnotationInject, "true", "no command line carries the proxy's configuration: "+err.Error(), allowed)
		return nil
	}
	if key != nil {
		rendered.Add(string(key), renderedArgs{c, slices.Clone(args)})
	}
	return args
}

// rendered remembers the command lines of the configurations validated and rendered lately, by
// their JSON: a workload's replicas ask for the same configuration, and config.Args builds the
// proxy's flag set three times to render and read it back, which was half of an admission's
// allocations. JSON is not exact (invalid UTF-8 reads as U+FFFD), so a remembered command line
// serves only a configuration config.Diff finds equal to its own. proxyArgs hands out copies,
// so no caller can change what is remembered.
var rendered = lru.New(1024)

// renderedArgs is a remembered configuration and its command line.
type renderedArgs struct {
	config *config.Config
	args   []string
}

// proxyRefusal is what the proxy's own validation says of one setting, "" when it accepts it:
// set changes a configuration the proxy accepts. A parser asks it of its annotation's value, so
// that a refusal names the annotation.
func proxyRefusal(set func(*config.Config)) string {
	c := (&Policy{ProxyPort: 8443, EndpointsPort: 8444, UpstreamPort: 8080, UpstreamScheme: SchemeHTTP, Authz: config.AuthzSAR}).ProxyConfig()
	set(c)
	if err := c.Validate(); err != nil {
		return "the proxy would refuse to start: " + err.Error()
	}
	return ""
}

// ProxyConfigOf is the configuration the proxy starts with from its command line, as its own
// flags read it (Config validates it): what the certificate controller checks of a stored Pod.
func ProxyConfigOf(args []string) (*config.Config, error) {
	flags := config.NewFlags(ContainerName)
	if err := flags.Parse(args); err != nil {
		return nil, err
	}
	return flags.Config()
}
