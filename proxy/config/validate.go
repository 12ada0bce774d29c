package config

import (
	"crypto/tls"
	"fmt"
	"net"
	"path"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// FieldError is a configuration error on one flag or config-file field: it
// names the field, the offending value and what is allowed, on one line.
type FieldError struct {
	Field   string // "--upstream" or "config file authorization.static[0].path"
	Value   string
	Allowed string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("invalid value %q for %s: %s", e.Value, e.Field, e.Allowed)
}

func fieldErr(field, value, allowed string, args ...any) error {
	return &FieldError{Field: field, Value: value, Allowed: fmt.Sprintf(allowed, args...)}
}

// Validate checks the configuration and returns the first problem found.
func (c *Config) Validate() error {
	checks := []func() error{
		c.Listen.validate,
		c.validateTLS,
		c.HTTP2.validate,
		c.Limits.validate,
		c.Upstream.validate,
		c.Paths.validate,
		c.Authentication.validate,
		c.Authorization.validate,
		c.Cache.validate,
		c.KubeAPI.validate,
	}
	for _, check := range checks {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

func validHostPort(v string) bool {
	_, port, err := net.SplitHostPort(v)
	return err == nil && port != ""
}

func (l ListenConfig) validate() error {
	if l.SecureAddress == "" && l.InsecureAddress == "" {
		return fieldErr("--secure-listen-address", "", "a listen address is required, for example 0.0.0.0:8443")
	}
	if l.SecureAddress != "" && !validHostPort(l.SecureAddress) {
		return fieldErr("--secure-listen-address", l.SecureAddress, "must be host:port, for example 0.0.0.0:8443")
	}
	if l.InsecureAddress != "" && !validHostPort(l.InsecureAddress) {
		return fieldErr("--insecure-listen-address", l.InsecureAddress, "must be host:port, for example 127.0.0.1:8080")
	}
	if l.ProxyEndpointsPort < 0 || l.ProxyEndpointsPort > 65535 {
		return fieldErr("--proxy-endpoints-port", fmt.Sprint(l.ProxyEndpointsPort), "must be a port between 1 and 65535, or 0 to disable")
	}
	if l.ProxyEndpointsPort != 0 {
		if l.SecureAddress == "" {
			return fieldErr("--proxy-endpoints-port", fmt.Sprint(l.ProxyEndpointsPort), "needs --secure-listen-address (its host is used)")
		}
		if _, port, _ := net.SplitHostPort(l.SecureAddress); port == fmt.Sprint(l.ProxyEndpointsPort) {
			return fieldErr("--proxy-endpoints-port", fmt.Sprint(l.ProxyEndpointsPort), "must differ from the port of --secure-listen-address")
		}
	}
	return validateProbes(l)
}

func (c *Config) validateTLS() error {
	t := c.TLS
	if (t.CertFile == "") != (t.KeyFile == "") {
		if t.CertFile == "" {
			return fieldErr("--tls-cert-file", "", "required when --tls-private-key-file is set")
		}
		return fieldErr("--tls-private-key-file", "", "required when --tls-cert-file is set")
	}
	if t.ReloadInterval <= 0 {
		return fieldErr("reload interval", t.ReloadInterval.String(), "must be positive")
	}
	if len(t.CipherSuites) > 0 && t.MinVersion < tls.VersionTLS13 && !c.HTTP2.Disable && !http2SuitePresent(t.CipherSuites) {
		// net/http's HTTP/2 server refuses to serve without one; say so at
		// start rather than fail when the listener starts serving.
		names := make([]string, len(t.CipherSuites))
		for i, id := range t.CipherSuites {
			names[i] = tls.CipherSuiteName(id)
		}
		return fieldErr("--tls-cipher-suites", strings.Join(names, ","), "HTTP/2 needs TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 or TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 in the list; add one, or set --http2-disable")
	}
	return nil
}

// http2SuitePresent reports whether suites hold one of the TLS 1.2 suites
// HTTP/2 requires (RFC 7540 section 9.2.2; net/http checks it).
func http2SuitePresent(suites []uint16) bool {
	for _, id := range suites {
		if id == tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 || id == tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 {
			return true
		}
	}
	return false
}

func (h HTTP2Config) validate() error {
	if h.Disable {
		return nil
	}
	if h.MaxConcurrentStreams == 0 {
		return fieldErr("--http2-max-concurrent-streams", "0", "must be at least 1")
	}
	if h.MaxSize < 16384 || h.MaxSize > 16777215 {
		return fieldErr("--http2-max-size", fmt.Sprint(h.MaxSize), "must be between 16384 and 16777215 bytes")
	}
	return nil
}

func (l ServerLimits) validate() error {
	if l.ReadHeaderTimeout <= 0 {
		return fieldErr("--read-header-timeout", l.ReadHeaderTimeout.String(), "must be positive")
	}
	if l.IdleTimeout <= 0 {
		return fieldErr("--idle-timeout", l.IdleTimeout.String(), "must be positive")
	}
	if l.MaxHeaderBytes < 4096 {
		return fieldErr("--max-header-bytes", fmt.Sprint(l.MaxHeaderBytes), "must be at least 4096")
	}
	if l.ShutdownGracePeriod < 0 {
		return fieldErr("--shutdown-grace-period", l.ShutdownGracePeriod.String(), "must not be negative")
	}
	if l.RequestBodyTimeout <= 0 {
		return fieldErr("--request-body-timeout", l.RequestBodyTimeout.String(), "must be positive, for example 30s")
	}
	if l.MaxConnections < 1 {
		return fieldErr("--max-connections", fmt.Sprint(l.MaxConnections), "must be at least 1")
	}
	return nil
}

// isLoopbackHost reports whether host is localhost or a loopback IP.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (u UpstreamConfig) validate() error {
	if u.URL == nil {
		return fieldErr("--upstream", "", "an upstream URL is required: http://host:port, https://host:port or unix:///path/to.sock")
	}
	raw := u.URL.String()
	switch u.URL.Scheme {
	case "http", "https":
		if u.URL.Host == "" {
			return fieldErr("--upstream", raw, "needs a host, for example http://127.0.0.1:8080/")
		}
	case "unix":
		if u.URL.Host != "" || u.URL.Path == "" {
			return fieldErr("--upstream", raw, "a unix socket upstream is unix:///absolute/path/to.sock")
		}
	default:
		return fieldErr("--upstream", raw, "the scheme must be http, https or unix")
	}
	if u.Timeout < 0 {
		return fieldErr("--upstream-timeout", u.Timeout.String(), "must not be negative (0 means no bound)")
	}
	if u.ForceH2C && u.URL.Scheme == "https" {
		return fieldErr("--upstream-force-h2c", "true", "h2c is cleartext; it needs an http:// or unix:// upstream")
	}
	if (u.ClientCertFile == "") != (u.ClientKeyFile == "") {
		if u.ClientCertFile == "" {
			return fieldErr("--upstream-client-cert-file", "", "required when --upstream-client-key-file is set")
		}
		return fieldErr("--upstream-client-key-file", "", "required when --upstream-client-cert-file is set")
	}
	for _, p := range u.AllowedUpgrades {
		if !httpguts.ValidHeaderFieldName(p) {
			return fieldErr("--allowed-upgrades", p, "must be a protocol name as the Upgrade header gives it, for example websocket")
		}
		if CarriesHTTP(p) {
			return fieldErr("--allowed-upgrades", p, "is never allowed: an upgrade to HTTP (h2c) carries requests that no path policy or review sees")
		}
	}
	if len(u.AllowedUpgrades) > 0 && u.ForceH2C {
		return fieldErr("--allowed-upgrades", strings.Join(u.AllowedUpgrades, ","), "needs an HTTP/1 upstream: HTTP/2 (--upstream-force-h2c) has no upgrades")
	}
	if u.InsecureSkipVerify {
		if u.URL.Scheme != "https" {
			return fieldErr("--upstream-insecure-skip-verify", "true", "only meaningful with an https:// upstream")
		}
		if !isLoopbackHost(u.URL.Hostname()) {
			return fieldErr("--upstream-insecure-skip-verify", "true", "only allowed for a loopback upstream (127.0.0.0/8, ::1 or localhost), not %q", u.URL.Hostname())
		}
	}
	return nil
}

func validatePatterns(flag string, patterns []string) error {
	for _, p := range patterns {
		if !strings.HasPrefix(p, "/") {
			return fieldErr(flag, p, "each pattern must be an absolute path pattern starting with /, for example /metrics")
		}
		if _, err := path.Match(p, ""); err != nil {
			return fieldErr(flag, p, "not a valid path.Match pattern (*, ?, [a-z] and \\ escapes are allowed)")
		}
	}
	return nil
}

func (p PathPolicy) validate() error {
	if len(p.Allow) > 0 && len(p.Ignore) > 0 {
		return fieldErr("--ignore-paths", strings.Join(p.Ignore, ","), "cannot be used together with --allow-paths")
	}
	if err := validatePatterns("--allow-paths", p.Allow); err != nil {
		return err
	}
	return validatePatterns("--ignore-paths", p.Ignore)
}

func (a AuthenticationConfig) validate() error {
	for _, aud := range a.Audiences {
		if strings.TrimSpace(aud) == "" {
			return fieldErr("--auth-token-audiences", strings.Join(a.Audiences, ","), "audiences must not be empty strings")
		}
	}
	h := a.Header
	if !httpguts.ValidHeaderFieldName(h.UserField) {
		return fieldErr("--auth-header-user-field-name", h.UserField, "must be a valid HTTP header name")
	}
	if !httpguts.ValidHeaderFieldName(h.GroupsField) {
		return fieldErr("--auth-header-groups-field-name", h.GroupsField, "must be a valid HTTP header name")
	}
	if strings.EqualFold(h.UserField, h.GroupsField) {
		return fieldErr("--auth-header-groups-field-name", h.GroupsField, "must differ from --auth-header-user-field-name")
	}
	if !httpguts.ValidHeaderFieldValue(h.GroupSeparator) {
		return fieldErr("--auth-header-groups-field-separator", h.GroupSeparator, "must be valid in an HTTP header value")
	}
	return nil
}

const fileAuthz = "config file authorization"

func (a AuthorizationConfig) validate() error {
	switch a.Mode {
	case AuthzSAR:
		if !a.Allowed.Empty() {
			flag := "--allowed-users"
			val := strings.Join(a.Allowed.Users, ",")
			if len(a.Allowed.Users) == 0 {
				flag, val = "--allowed-groups", strings.Join(a.Allowed.Groups, ",")
			}
			return fieldErr(flag, val, "only valid with --authz=static")
		}
	case AuthzStatic:
		if a.Allowed.Empty() && len(a.Static) == 0 {
			return fieldErr("--authz", "static", "needs at least one rule: --allowed-users, --allowed-groups or config file authorization.static")
		}
	default:
		return fieldErr("--authz", string(a.Mode), "allowed values are sar, static")
	}
	for _, u := range a.Allowed.Users {
		if u == "" {
			return fieldErr("--allowed-users", strings.Join(a.Allowed.Users, ","), "user names must not be empty")
		}
	}
	for _, g := range a.Allowed.Groups {
		if g == "" {
			return fieldErr("--allowed-groups", strings.Join(a.Allowed.Groups, ","), "group names must not be empty")
		}
	}
	if a.Rewrites != nil {
		if q := a.Rewrites.ByQueryParameter; q != nil && q.Name == "" {
			return fieldErr(fileAuthz+".rewrites.byQueryParameter.name", "", "must name a query parameter")
		}
		if h := a.Rewrites.ByHTTPHeader; h != nil && !httpguts.ValidHeaderFieldName(h.Name) {
			return fieldErr(fileAuthz+".rewrites.byHttpHeader.name", h.Name, "must be a valid HTTP header name")
		}
		if h := a.Rewrites.ByHTTPHeader; h != nil && HeaderStripped(StrippedRequestHeaders, h.Name) {
			return fieldErr(fileAuthz+".rewrites.byHttpHeader.name", h.Name, "is removed from every request (it names an identity, a method or a URL); choose another header")
		}
	}
	if a.ResourceAttributes != nil {
		if err := a.ResourceAttributes.validate(); err != nil {
			return err
		}
	}
	for i, r := range a.Static {
		if err := r.validate(fmt.Sprintf("%s.static[%d]", fileAuthz, i)); err != nil {
			return err
		}
	}
	return nil
}

func (r StaticRule) validate(field string) error {
	if r.ResourceRequest && r.Path != "" {
		return fieldErr(field+".path", r.Path, "a resource rule (resourceRequest: true) must not have a path")
	}
	if !r.ResourceRequest && r.Path == "" {
		return fieldErr(field+".path", "", "a non-resource rule needs a path (or set resourceRequest: true)")
	}
	if !r.ResourceRequest && !strings.HasPrefix(r.Path, "/") {
		return fieldErr(field+".path", r.Path, "must be an absolute path starting with /")
	}
	for i, g := range r.User.Groups {
		if g == "" {
			return fieldErr(fmt.Sprintf("%s.user.groups[%d]", field, i), "", "group names must not be empty")
		}
	}
	return nil
}

func (c CacheConfig) validate() error {
	for _, d := range []struct {
		flag string
		v    interface{ String() string }
		neg  bool
	}{
		{"--authentication-token-webhook-cache-ttl", c.TokenSuccessTTL, c.TokenSuccessTTL < 0},
		{"--authentication-token-webhook-cache-unauthorized-ttl", c.TokenFailureTTL, c.TokenFailureTTL < 0},
		{"--authorization-webhook-cache-authorized-ttl", c.AuthorizedTTL, c.AuthorizedTTL < 0},
		{"--authorization-webhook-cache-unauthorized-ttl", c.UnauthorizedTTL, c.UnauthorizedTTL < 0},
		{"--stale-cache-ttl", c.StaleTTL, c.StaleTTL < 0},
	} {
		if d.neg {
			return fieldErr(d.flag, d.v.String(), "must not be negative (0 disables caching)")
		}
	}
	if c.MaxEntries < 1 {
		return fieldErr("--cache-max-entries", fmt.Sprint(c.MaxEntries), "must be at least 1")
	}
	return nil
}

func (k KubeAPIConfig) validate() error {
	if k.QPS < 0 {
		return fieldErr("--kube-api-qps", fmt.Sprint(k.QPS), "must not be negative")
	}
	if k.Burst < 0 {
		return fieldErr("--kube-api-burst", fmt.Sprint(k.Burst), "must not be negative")
	}
	if k.Timeout <= 0 {
		return fieldErr("--kube-api-timeout", k.Timeout.String(), "must be positive, for example 3s")
	}
	return nil
}

// CarriesHTTP reports whether an Upgrade protocol would carry HTTP requests:
// h2c and h2 (and their drafts, h2c-14), HTTP/2.0 as RFC 7230's example
// spells it, h3.
func CarriesHTTP(proto string) bool {
	p := strings.ToLower(proto)
	return strings.HasPrefix(p, "h2") || strings.HasPrefix(p, "h3") || p == "http" || p == "https"
}
