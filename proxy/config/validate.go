package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"path"
	"strings"

	"golang.org/x/net/http/httpguts"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Each error's field path is the flag that sets the field (--upstream), or
// the config file's key (authorization.static[0].path); the value is the one
// given, and the detail says what is allowed.

// flag is the field path of a command-line flag.
func flag(name string) *field.Path { return field.NewPath(name) }

// fileAuthz is the field path of the config file's authorization section.
var fileAuthz = field.NewPath("authorization")

// Validate checks the configuration and reports every bad field, as a
// field.ErrorList aggregate (nil when there is none).
func (c *Config) Validate() error {
	var errs field.ErrorList
	errs = append(errs, c.Listen.validate()...)
	errs = append(errs, c.validateTLS()...)
	errs = append(errs, c.HTTP2.validate()...)
	errs = append(errs, c.Limits.validate()...)
	errs = append(errs, c.Upstream.validate()...)
	errs = append(errs, c.Paths.validate()...)
	errs = append(errs, c.Authentication.validate()...)
	errs = append(errs, c.Authorization.validate()...)
	errs = append(errs, c.Cache.validate()...)
	errs = append(errs, c.KubeAPI.validate()...)
	return errs.ToAggregate()
}

// FieldErrors are the field.Errors of an error that Validate, Flags.Config
// or a parser of this package returned, in order; nil for any other error.
func FieldErrors(err error) field.ErrorList {
	var agg utilerrors.Aggregate
	if errors.As(err, &agg) {
		var errs field.ErrorList
		for _, e := range agg.Errors() {
			errs = append(errs, FieldErrors(e)...)
		}
		return errs
	}
	var fe *field.Error
	if errors.As(err, &fe) {
		return field.ErrorList{fe}
	}
	return nil
}

func validHostPort(v string) bool {
	_, port, err := net.SplitHostPort(v)
	return err == nil && port != ""
}

func (l ListenConfig) validate() field.ErrorList {
	var errs field.ErrorList
	if l.SecureAddress == "" && l.InsecureAddress == "" {
		errs = append(errs, field.Required(flag("--secure-listen-address"), "a listen address is required, for example 0.0.0.0:8443"))
	}
	if l.SecureAddress != "" && !validHostPort(l.SecureAddress) {
		errs = append(errs, field.Invalid(flag("--secure-listen-address"), l.SecureAddress, "must be host:port, for example 0.0.0.0:8443"))
	}
	if l.InsecureAddress != "" && !validHostPort(l.InsecureAddress) {
		errs = append(errs, field.Invalid(flag("--insecure-listen-address"), l.InsecureAddress, "must be host:port, for example 127.0.0.1:8080"))
	}
	port := flag("--proxy-endpoints-port")
	switch {
	case l.ProxyEndpointsPort < 0 || l.ProxyEndpointsPort > 65535:
		errs = append(errs, field.Invalid(port, l.ProxyEndpointsPort, "must be a port between 1 and 65535, or 0 to disable"))
	case l.ProxyEndpointsPort != 0 && l.SecureAddress == "":
		errs = append(errs, field.Invalid(port, l.ProxyEndpointsPort, "needs --secure-listen-address (its host is used)"))
	case l.ProxyEndpointsPort != 0:
		if _, p, _ := net.SplitHostPort(l.SecureAddress); p == fmt.Sprint(l.ProxyEndpointsPort) {
			errs = append(errs, field.Invalid(port, l.ProxyEndpointsPort, "must differ from the port of --secure-listen-address"))
		}
	}
	return append(errs, validateProbes(l)...)
}

func (c *Config) validateTLS() field.ErrorList {
	var errs field.ErrorList
	t := c.TLS
	if t.CertFile == "" && t.KeyFile != "" {
		errs = append(errs, field.Required(flag("--tls-cert-file"), "required when --tls-private-key-file is set"))
	}
	if t.CertFile != "" && t.KeyFile == "" {
		errs = append(errs, field.Required(flag("--tls-private-key-file"), "required when --tls-cert-file is set"))
	}
	if t.ReloadInterval <= 0 {
		errs = append(errs, field.Invalid(field.NewPath("TLS", "ReloadInterval"), t.ReloadInterval.String(), "must be positive"))
	}
	if len(t.CipherSuites) > 0 && t.MinVersion < tls.VersionTLS13 && !c.HTTP2.Disable && !http2SuitePresent(t.CipherSuites) {
		// net/http's HTTP/2 server refuses to serve without one; say so at
		// start rather than fail when the listener starts serving.
		names := make([]string, len(t.CipherSuites))
		for i, id := range t.CipherSuites {
			names[i] = tls.CipherSuiteName(id)
		}
		errs = append(errs, field.Invalid(flag("--tls-cipher-suites"), strings.Join(names, ","), "HTTP/2 needs TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 or TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 in the list; add one, or set --http2-disable"))
	}
	return errs
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

func (h HTTP2Config) validate() field.ErrorList {
	var errs field.ErrorList
	if h.Disable {
		return nil
	}
	if h.MaxConcurrentStreams == 0 {
		errs = append(errs, field.Invalid(flag("--http2-max-concurrent-streams"), int64(h.MaxConcurrentStreams), "must be at least 1"))
	}
	if h.MaxSize < 16384 || h.MaxSize > 16777215 {
		errs = append(errs, field.Invalid(flag("--http2-max-size"), int64(h.MaxSize), "must be between 16384 and 16777215 bytes"))
	}
	return errs
}

func (l ServerLimits) validate() field.ErrorList {
	var errs field.ErrorList
	if l.ReadHeaderTimeout <= 0 {
		errs = append(errs, field.Invalid(flag("--read-header-timeout"), l.ReadHeaderTimeout.String(), "must be positive"))
	}
	if l.IdleTimeout <= 0 {
		errs = append(errs, field.Invalid(flag("--idle-timeout"), l.IdleTimeout.String(), "must be positive"))
	}
	if l.MaxHeaderBytes < 4096 {
		errs = append(errs, field.Invalid(flag("--max-header-bytes"), l.MaxHeaderBytes, "must be at least 4096"))
	}
	if l.ShutdownGracePeriod < 0 {
		errs = append(errs, field.Invalid(flag("--shutdown-grace-period"), l.ShutdownGracePeriod.String(), "must not be negative"))
	}
	if l.RequestBodyTimeout <= 0 {
		errs = append(errs, field.Invalid(flag("--request-body-timeout"), l.RequestBodyTimeout.String(), "must be positive, for example 30s"))
	}
	if l.MaxConnections < 1 {
		errs = append(errs, field.Invalid(flag("--max-connections"), l.MaxConnections, "must be at least 1"))
	}
	return errs
}

// isLoopbackHost reports whether host is localhost or a loopback IP.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (u UpstreamConfig) validate() field.ErrorList {
	var errs field.ErrorList
	up := flag("--upstream")
	if u.URL == nil {
		errs = append(errs, field.Required(up, "an upstream URL is required: http://host:port, https://host:port or unix:///path/to.sock"))
	} else {
		raw := u.URL.String()
		switch u.URL.Scheme {
		case "http", "https":
			if u.URL.Host == "" {
				errs = append(errs, field.Invalid(up, raw, "needs a host, for example http://127.0.0.1:8080/"))
			}
		case "unix":
			if u.URL.Host != "" || u.URL.Path == "" {
				errs = append(errs, field.Invalid(up, raw, "a unix socket upstream is unix:///absolute/path/to.sock"))
			}
		default:
			errs = append(errs, field.Invalid(up, raw, "the scheme must be http, https or unix"))
		}
	}
	scheme := ""
	if u.URL != nil {
		scheme = u.URL.Scheme
	}
	if u.Timeout < 0 {
		errs = append(errs, field.Invalid(flag("--upstream-timeout"), u.Timeout.String(), "must not be negative (0 means no bound)"))
	}
	if u.ForceH2C && scheme == "https" {
		errs = append(errs, field.Invalid(flag("--upstream-force-h2c"), true, "h2c is cleartext; it needs an http:// or unix:// upstream"))
	}
	if u.ClientCertFile == "" && u.ClientKeyFile != "" {
		errs = append(errs, field.Required(flag("--upstream-client-cert-file"), "required when --upstream-client-key-file is set"))
	}
	if u.ClientCertFile != "" && u.ClientKeyFile == "" {
		errs = append(errs, field.Required(flag("--upstream-client-key-file"), "required when --upstream-client-cert-file is set"))
	}
	upgrades := flag("--allowed-upgrades")
	for _, p := range u.AllowedUpgrades {
		if !httpguts.ValidHeaderFieldName(p) {
			errs = append(errs, field.Invalid(upgrades, p, "must be a protocol name as the Upgrade header gives it, for example websocket"))
		} else if CarriesHTTP(p) {
			errs = append(errs, field.Invalid(upgrades, p, "is never allowed: an upgrade to HTTP (h2c) carries requests that no path policy or review sees"))
		}
	}
	if len(u.AllowedUpgrades) > 0 && u.ForceH2C {
		errs = append(errs, field.Invalid(upgrades, strings.Join(u.AllowedUpgrades, ","), "needs an HTTP/1 upstream: HTTP/2 (--upstream-force-h2c) has no upgrades"))
	}
	if u.InsecureSkipVerify {
		skip := flag("--upstream-insecure-skip-verify")
		switch {
		case scheme != "https":
			errs = append(errs, field.Invalid(skip, true, "only meaningful with an https:// upstream"))
		case !isLoopbackHost(u.URL.Hostname()):
			errs = append(errs, field.Invalid(skip, true, fmt.Sprintf("only allowed for a loopback upstream (127.0.0.0/8, ::1 or localhost), not %q", u.URL.Hostname())))
		}
	}
	return errs
}

func validatePatterns(fld *field.Path, patterns []string) field.ErrorList {
	var errs field.ErrorList
	for _, p := range patterns {
		if !strings.HasPrefix(p, "/") {
			errs = append(errs, field.Invalid(fld, p, "each pattern must be an absolute path pattern starting with /, for example /metrics"))
		} else if _, err := path.Match(p, ""); err != nil {
			errs = append(errs, field.Invalid(fld, p, "not a valid path.Match pattern (*, ?, [a-z] and \\ escapes are allowed)"))
		}
	}
	return errs
}

func (p PathPolicy) validate() field.ErrorList {
	var errs field.ErrorList
	if len(p.Allow) > 0 && len(p.Ignore) > 0 {
		errs = append(errs, field.Invalid(flag("--ignore-paths"), strings.Join(p.Ignore, ","), "cannot be used together with --allow-paths"))
	}
	errs = append(errs, validatePatterns(flag("--allow-paths"), p.Allow)...)
	return append(errs, validatePatterns(flag("--ignore-paths"), p.Ignore)...)
}

func (a AuthenticationConfig) validate() field.ErrorList {
	var errs field.ErrorList
	for _, aud := range a.Audiences {
		if strings.TrimSpace(aud) == "" {
			errs = append(errs, field.Invalid(flag("--auth-token-audiences"), strings.Join(a.Audiences, ","), "audiences must not be empty strings"))
			break
		}
	}
	h := a.Header
	if !httpguts.ValidHeaderFieldName(h.UserField) {
		errs = append(errs, field.Invalid(flag("--auth-header-user-field-name"), h.UserField, "must be a valid HTTP header name"))
	}
	if !httpguts.ValidHeaderFieldName(h.GroupsField) {
		errs = append(errs, field.Invalid(flag("--auth-header-groups-field-name"), h.GroupsField, "must be a valid HTTP header name"))
	} else if strings.EqualFold(h.UserField, h.GroupsField) {
		errs = append(errs, field.Invalid(flag("--auth-header-groups-field-name"), h.GroupsField, "must differ from --auth-header-user-field-name"))
	}
	if !httpguts.ValidHeaderFieldValue(h.GroupSeparator) {
		errs = append(errs, field.Invalid(flag("--auth-header-groups-field-separator"), h.GroupSeparator, "must be valid in an HTTP header value"))
	}
	errs = append(errs, a.validateServiceAccounts()...)
	errs = append(errs, a.validateJWT()...)
	return errs
}

func (a AuthorizationConfig) validate() field.ErrorList {
	var errs field.ErrorList
	users, groups := flag("--allowed-users"), flag("--allowed-groups")
	switch a.Mode {
	case AuthzSAR:
		if len(a.Allowed.Users) > 0 {
			errs = append(errs, field.Invalid(users, strings.Join(a.Allowed.Users, ","), "only valid with --authz=static"))
		}
		if len(a.Allowed.Groups) > 0 {
			errs = append(errs, field.Invalid(groups, strings.Join(a.Allowed.Groups, ","), "only valid with --authz=static"))
		}
	case AuthzStatic:
		if a.Allowed.Empty() && len(a.Static) == 0 {
			errs = append(errs, field.Invalid(flag("--authz"), string(a.Mode), "needs at least one rule: --allowed-users, --allowed-groups or config file authorization.static"))
		}
	default:
		errs = append(errs, field.NotSupported(flag("--authz"), string(a.Mode), []string{string(AuthzSAR), string(AuthzStatic)}))
	}
	for _, u := range a.Allowed.Users {
		if u == "" {
			errs = append(errs, field.Invalid(users, strings.Join(a.Allowed.Users, ","), "user names must not be empty"))
			break
		}
	}
	for _, g := range a.Allowed.Groups {
		if g == "" {
			errs = append(errs, field.Invalid(groups, strings.Join(a.Allowed.Groups, ","), "group names must not be empty"))
			break
		}
	}
	if a.Rewrites != nil {
		rw := fileAuthz.Child("rewrites")
		if q := a.Rewrites.ByQueryParameter; q != nil && q.Name == "" {
			errs = append(errs, field.Required(rw.Child("byQueryParameter", "name"), "must name a query parameter"))
		}
		if h := a.Rewrites.ByHTTPHeader; h != nil {
			name := rw.Child("byHttpHeader", "name")
			if !httpguts.ValidHeaderFieldName(h.Name) {
				errs = append(errs, field.Invalid(name, h.Name, "must be a valid HTTP header name"))
			} else if HeaderStripped(StrippedRequestHeaders, h.Name) {
				errs = append(errs, field.Invalid(name, h.Name, "is removed from every request (it names an identity, a method or a URL); choose another header"))
			}
		}
	}
	if a.ResourceAttributes != nil {
		errs = append(errs, a.ResourceAttributes.validate()...)
	}
	for i, r := range a.Static {
		errs = append(errs, r.validate(fileAuthz.Child("static").Index(i))...)
	}
	return append(errs, a.Tenancy.validate()...)
}

func (r StaticRule) validate(fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch {
	case r.ResourceRequest && r.Path != "":
		errs = append(errs, field.Invalid(fld.Child("path"), r.Path, "a resource rule (resourceRequest: true) must not have a path"))
	case !r.ResourceRequest && r.Path == "":
		errs = append(errs, field.Required(fld.Child("path"), "a non-resource rule needs a path (or set resourceRequest: true)"))
	case !r.ResourceRequest && !strings.HasPrefix(r.Path, "/"):
		errs = append(errs, field.Invalid(fld.Child("path"), r.Path, "must be an absolute path starting with /"))
	}
	for i, g := range r.User.Groups {
		if g == "" {
			errs = append(errs, field.Required(fld.Child("user", "groups").Index(i), "group names must not be empty"))
		}
	}
	return errs
}

func (c CacheConfig) validate() field.ErrorList {
	var errs field.ErrorList
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
			errs = append(errs, field.Invalid(flag(d.flag), d.v.String(), "must not be negative (0 disables caching)"))
		}
	}
	if c.MaxEntries < 1 {
		errs = append(errs, field.Invalid(flag("--cache-max-entries"), c.MaxEntries, "must be at least 1"))
	}
	return errs
}

func (k KubeAPIConfig) validate() field.ErrorList {
	var errs field.ErrorList
	if k.QPS < 0 {
		errs = append(errs, field.Invalid(flag("--kube-api-qps"), k.QPS, "must not be negative"))
	}
	if k.Burst < 0 {
		errs = append(errs, field.Invalid(flag("--kube-api-burst"), k.Burst, "must not be negative"))
	}
	if k.Timeout <= 0 {
		errs = append(errs, field.Invalid(flag("--kube-api-timeout"), k.Timeout.String(), "must be positive, for example 3s"))
	}
	return errs
}

// CarriesHTTP reports whether an Upgrade protocol would carry HTTP requests:
// h2c and h2 (and their drafts, h2c-14), HTTP/2.0 as RFC 7230's example
// spells it, h3.
func CarriesHTTP(proto string) bool {
	p := strings.ToLower(proto)
	return strings.HasPrefix(p, "h2") || strings.HasPrefix(p, "h3") || p == "http" || p == "https"
}
