package config

import (
	"bytes"
	"crypto/tls"
	"encoding/csv"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strings"

	"github.com/spf13/pflag"
	cliflag "k8s.io/component-base/cli/flag"
)

// Args renders c as the command line that NewFlags(...).Parse and Config
// read back to c: the inverse of parsing, so that whoever builds a Config
// (the webhook, from its Policy) never writes a flag name itself. Only what
// differs from the flag defaults is written, in the order the flags are
// defined. Args does not validate; Validate does. It refuses, naming the
// field, what no command line expresses: static rules and rewrites (only
// the config file carries them), and values that the flags would read back
// otherwise (a list item CSV cannot carry, a resource attribute with a
// comma, a QPS of 0, which the flag reads as the default).
func Args(c *Config) ([]string, error) {
	f := NewFlags("rbac-proxy")
	if err := f.set(c); err != nil {
		return nil, fmt.Errorf("config.Args: %w", err)
	}
	var args []string
	f.fs.SortFlags = false // definition order: related flags stay together
	defaults := NewFlags("rbac-proxy").fs
	var err error
	f.fs.VisitAll(func(fl *pflag.Flag) {
		if err == nil {
			var a []string
			a, err = flagArgs(fl, defaults.Lookup(fl.Name))
			args = append(args, a...)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("config.Args: %w", err)
	}

	// Read it back as the proxy will: what does not survive is not
	// expressible, whichever field it is.
	back := NewFlags("rbac-proxy")
	if err := back.Parse(args); err != nil {
		return nil, fmt.Errorf("config.Args: the rendered command line does not parse: %w", err)
	}
	got, err := back.build()
	if err != nil {
		return nil, fmt.Errorf("config.Args: the rendered command line is refused: %w", err)
	}
	if field := Diff(c, got); field != "" {
		return nil, fmt.Errorf("config.Args: %s is not expressible on the command line: it would read back as %s", field, valueAt(got, field))
	}
	return args, nil
}

// set puts c into the raw flag values, at the flag's own default where the
// flag reads that as c's value.
func (f *Flags) set(c *Config) error {
	a := c.Authorization
	if len(a.Static) > 0 {
		return fmt.Errorf("Authorization.Static: static rules are read only from the config file (authorization.static)")
	}
	if a.Rewrites != nil {
		return fmt.Errorf("Authorization.Rewrites: rewrites are read only from the config file (authorization.rewrites)")
	}
	if c.TLS.ReloadInterval != DefaultReloadInterval {
		return fmt.Errorf("TLS.ReloadInterval: %v is not expressible: the files are checked every %v (--tls-reload-interval is ignored)", c.TLS.ReloadInterval, DefaultReloadInterval)
	}

	l := c.Listen
	f.SecureListenAddress, f.InsecureListenAddress, f.ProxyEndpointsPort = l.SecureAddress, l.InsecureAddress, l.ProxyEndpointsPort
	f.ProbePassthrough = nil
	for i, p := range l.ProbePassthrough {
		if _, err := ParseProbePassthrough(p.String()); err != nil {
			return fmt.Errorf("Listen.ProbePassthrough[%d]: %w", i, err)
		}
		f.ProbePassthrough = append(f.ProbePassthrough, p.String())
	}

	u := c.Upstream
	f.Upstream = ""
	if u.URL != nil {
		f.Upstream = u.URL.String()
		if _, err := url.Parse(f.Upstream); err != nil {
			return fmt.Errorf("Upstream.URL: %w", err)
		}
	}
	f.UpstreamForceH2C, f.UpstreamCAFile = u.ForceH2C, u.CAFile
	f.UpstreamClientCertFile, f.UpstreamClientKeyFile = u.ClientCertFile, u.ClientKeyFile
	f.UpstreamInsecureSkipVerify, f.AllowedUpgrades, f.UpstreamTimeout = u.InsecureSkipVerify, u.AllowedUpgrades, u.Timeout

	t := c.TLS
	f.TLSCertFile, f.TLSKeyFile, f.ClientCAFile = t.CertFile, t.KeyFile, t.ClientCAFile
	name, err := tlsVersionName(t.MinVersion)
	if err != nil {
		return err
	}
	f.TLSMinVersion = name
	f.TLSCipherSuites = nil
	for _, id := range t.CipherSuites {
		name := tls.CipherSuiteName(id)
		if _, err := cliflag.TLSCipherSuites([]string{name}); err != nil {
			return fmt.Errorf("TLS.CipherSuites: %s is not a suite --tls-cipher-suites names", name)
		}
		f.TLSCipherSuites = append(f.TLSCipherSuites, name)
	}

	f.AllowPaths, f.IgnorePaths = c.Paths.Allow, c.Paths.Ignore

	h := c.Authentication.Header
	f.AuthTokenAudiences = c.Authentication.Audiences
	f.AuthHeaderEnabled, f.AuthHeaderUserField = h.Enabled, h.UserField
	f.AuthHeaderGroupsField, f.AuthHeaderGroupSeparator = h.GroupsField, h.GroupSeparator
	f.setServiceAccountTokens(c.Authentication.ServiceAccounts)
	o := c.Authentication.OIDC
	f.OIDCIssuer, f.OIDCClientID, f.OIDCCAFile = o.IssuerURL, o.ClientID, o.CAFile
	f.OIDCUsernameClaim, f.OIDCUsernamePrefix = o.UsernameClaim, o.UsernamePrefix
	f.OIDCGroupsClaim, f.OIDCGroupsPrefix, f.OIDCSignAlgs = o.GroupsClaim, o.GroupsPrefix, o.SigningAlgs
	f.JWTConfigFile = c.Authentication.JWTConfigFile

	f.Authz = string(a.Mode)
	f.setTenancy(a.Tenancy)
	f.AllowedUsers, f.AllowedGroups = a.Allowed.Users, a.Allowed.Groups
	f.ResourceAttributes = ""
	if ra := a.ResourceAttributes; ra != nil {
		f.ResourceAttributes = renderResourceAttributes(*ra)
		if _, err := ParseResourceAttributes(f.ResourceAttributes); err != nil {
			return fmt.Errorf("Authorization.ResourceAttributes: only the config file can carry %+v: %w", *ra, err)
		}
	}

	ca := c.Cache
	f.TokenCacheTTL, f.TokenCacheUnauthorizedTTL = ca.TokenSuccessTTL, ca.TokenFailureTTL
	f.AuthzCacheAuthorizedTTL, f.AuthzCacheUnauthorizedTTL = ca.AuthorizedTTL, ca.UnauthorizedTTL
	f.StaleCacheTTL, f.CacheMaxEntries = ca.StaleTTL, ca.MaxEntries

	k := c.KubeAPI
	// The flags' 0 means the default, so the default is written as 0 (not
	// at all) and 0 itself cannot be.
	if k.QPS == 0 {
		return fmt.Errorf("KubeAPI.QPS: 0 is not expressible: --kube-api-qps=0 means %v", DefaultKubeAPIQPS)
	}
	if k.Burst == 0 {
		return fmt.Errorf("KubeAPI.Burst: 0 is not expressible: --kube-api-burst=0 means %v", DefaultKubeAPIBurst)
	}
	f.Kubeconfig, f.KubeAPIQPS, f.KubeAPIBurst, f.KubeAPITimeout = k.Kubeconfig, k.QPS, k.Burst, k.Timeout
	if f.KubeAPIQPS == DefaultKubeAPIQPS {
		f.KubeAPIQPS = 0
	}
	if f.KubeAPIBurst == DefaultKubeAPIBurst {
		f.KubeAPIBurst = 0
	}

	f.HTTP2Disable, f.HTTP2MaxConcurrentStreams, f.HTTP2MaxSize = c.HTTP2.Disable, c.HTTP2.MaxConcurrentStreams, c.HTTP2.MaxSize

	lim := c.Limits
	f.ReadHeaderTimeout, f.IdleTimeout, f.MaxHeaderBytes = lim.ReadHeaderTimeout, lim.IdleTimeout, lim.MaxHeaderBytes
	f.ShutdownGracePeriod, f.RequestBodyTimeout, f.MaxConnections = lim.ShutdownGracePeriod, lim.RequestBodyTimeout, lim.MaxConnections

	f.Verbosity = c.Log.Verbosity
	return nil
}

// tlsVersionName is the --tls-min-version name of a TLS version.
func tlsVersionName(v uint16) (string, error) {
	for _, name := range cliflag.TLSPossibleVersions() {
		if id, err := cliflag.TLSVersion(name); err == nil && id == v {
			return name, nil
		}
	}
	return "", fmt.Errorf("TLS.MinVersion: %#04x is not a version --tls-min-version names (%s)", v, strings.Join(cliflag.TLSPossibleVersions(), ", "))
}

// renderResourceAttributes is the --resource-attributes value of ra: its set
// attributes, or one empty one when none is set (the flag needs a key).
func renderResourceAttributes(ra ResourceAttributes) string {
	var kv []string
	for i, f := range resourceAttributeFields {
		if v := *f.at(&ra); v != "" {
			kv = append(kv, resourceAttributeKey(i)+"="+v)
		}
	}
	if len(kv) == 0 {
		return resourceAttributeKey(0) + "="
	}
	return strings.Join(kv, ",")
}

// flagArgs renders one flag, nothing when it holds its default (def).
func flagArgs(fl, def *pflag.Flag) ([]string, error) {
	name := "--" + fl.Name
	if len(fl.Name) == 1 {
		name = "-" + fl.Name
	}
	if sv, ok := fl.Value.(pflag.SliceValue); ok {
		// Compared as lists: String() writes [] for [""] as well.
		vals := sv.GetSlice()
		if slices.Equal(vals, def.Value.(pflag.SliceValue).GetSlice()) {
			return nil, nil
		}
		if fl.Value.Type() == "stringArray" { // repeated, each value as it is
			out := make([]string, len(vals))
			for i, v := range vals {
				out[i] = name + "=" + v
			}
			return out, nil
		}
		v, err := writeCSV(vals)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return []string{name + "=" + v}, nil
	}
	v := fl.Value.String()
	if v == fl.DefValue {
		return nil, nil
	}
	if fl.Value.Type() == "bool" && v == "true" {
		return []string{name}, nil
	}
	return []string{name + "=" + v}, nil
}

// writeCSV joins a list as pflag's string slices read it.
func writeCSV(vals []string) (string, error) {
	if len(vals) == 1 && vals[0] == "" {
		return `""`, nil // encoding/csv writes nothing, which reads as no item
	}
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	if err := w.Write(vals); err != nil {
		return "", err
	}
	w.Flush()
	return strings.TrimSuffix(b.String(), "\n"), w.Error()
}

// Diff is the path of the first field (such as Upstream.AllowedUpgrades)
// where a and b differ, "" when they are equal. A nil list equals an empty
// one, and URLs are equal when they are written the same (RawPath is only a
// spelling hint): the proxy reads both the same.
func Diff(a, b *Config) string {
	return diff(reflect.ValueOf(*a), reflect.ValueOf(*b), "")
}

func diff(a, b reflect.Value, path string) string {
	if ua, ok := a.Interface().(*url.URL); ok {
		ub := b.Interface().(*url.URL)
		if (ua == nil) != (ub == nil) || ua != nil && ua.String() != ub.String() {
			return path
		}
		return ""
	}
	switch a.Kind() {
	case reflect.Struct:
		if a.Type().PkgPath() != reflect.TypeOf(Config{}).PkgPath() {
			break // url.URL and other foreign types: compared whole
		}
		for i := 0; i < a.NumField(); i++ {
			p := a.Type().Field(i).Name
			if path != "" {
				p = path + "." + p
			}
			if d := diff(a.Field(i), b.Field(i), p); d != "" {
				return d
			}
		}
		return ""
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			if a.IsNil() != b.IsNil() {
				return path
			}
			return ""
		}
		return diff(a.Elem(), b.Elem(), path)
	case reflect.Slice:
		if a.Len() == 0 && b.Len() == 0 {
			return ""
		}
	}
	if !reflect.DeepEqual(a.Interface(), b.Interface()) {
		return path
	}
	return ""
}

// valueAt is the value of field path p in c, for messages.
func valueAt(c *Config, p string) string {
	v := reflect.ValueOf(*c)
	for _, name := range strings.Split(p, ".") {
		for v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return "nil"
			}
			v = v.Elem()
		}
		v = v.FieldByName(name)
	}
	if s, ok := v.Interface().(fmt.Stringer); ok && !(v.Kind() == reflect.Pointer && v.IsNil()) {
		return fmt.Sprintf("%q", s.String())
	}
	return fmt.Sprintf("%#v", v.Interface())
}
