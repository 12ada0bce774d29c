package config

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation/field"
	cliflag "k8s.io/component-base/cli/flag"
)

// Flags holds the raw command-line values of rbac-proxy. It accepts every
// flag of kube-rbac-proxy v0.19 with the same defaults, plus rbac-proxy's own.
type Flags struct {
	fs *pflag.FlagSet

	ConfigFile            string
	InsecureListenAddress string
	SecureListenAddress   string
	ProxyEndpointsPort    int
	ProbePassthrough      []string

	Upstream                   string
	UpstreamForceH2C           bool
	UpstreamCAFile             string
	UpstreamClientCertFile     string
	UpstreamClientKeyFile      string
	UpstreamInsecureSkipVerify bool
	AllowedUpgrades            []string
	UpstreamTimeout            time.Duration

	TLSCertFile       string
	TLSKeyFile        string
	TLSMinVersion     string
	TLSCipherSuites   []string
	TLSReloadInterval time.Duration
	ClientCAFile      string

	AllowPaths  []string
	IgnorePaths []string

	AuthHeaderEnabled        bool
	AuthHeaderUserField      string
	AuthHeaderGroupsField    string
	AuthHeaderGroupSeparator string
	AuthTokenAudiences       []string

	SATokenVerification  string
	SAMaxTokenExpiration time.Duration
	SALongLivedTokens    string
	SALegacyTokens       string

	Authz              string
	AllowedUsers       []string
	AllowedGroups      []string
	ResourceAttributes string

	Tenancy                string
	TenancyNamespaceLabels []string
	TenancyVerb            string
	TenancyResource        string

	TokenCacheTTL             time.Duration
	TokenCacheUnauthorizedTTL time.Duration
	AuthzCacheAuthorizedTTL   time.Duration
	AuthzCacheUnauthorizedTTL time.Duration
	StaleCacheTTL             time.Duration
	CacheMaxEntries           int

	Kubeconfig     string
	KubeAPIQPS     float32
	KubeAPIBurst   int
	KubeAPITimeout time.Duration

	HTTP2Disable              bool
	HTTP2MaxConcurrentStreams uint32
	HTTP2MaxSize              uint32

	ReadHeaderTimeout   time.Duration
	IdleTimeout         time.Duration
	MaxHeaderBytes      int
	ShutdownGracePeriod time.Duration
	RequestBodyTimeout  time.Duration
	MaxConnections      int

	OIDCIssuer         string
	OIDCClientID       string
	OIDCGroupsClaim    string
	OIDCUsernameClaim  string
	OIDCUsernamePrefix string
	OIDCGroupsPrefix   string
	OIDCSignAlgs       []string
	OIDCCAFile         string
	JWTConfigFile      string

	// Verbosity is -v: the log level, as in kube-rbac-proxy's klog.
	Verbosity int
	VModule   string
	Version   bool
	Help      bool

	// configWarnings are found while reading the config file.
	configWarnings []string
}

// removedLogFlags are klog flags kube-rbac-proxy accepts without effect; so do we.
var removedLogFlags = []struct{ name, kind string }{
	{"logtostderr", "bool"}, {"add-dir-header", "bool"}, {"alsologtostderr", "bool"},
	{"log-backtrace-at", "string"}, {"log-dir", "string"}, {"log-file", "string"},
	{"log-file-max-size", "uint64"}, {"one-output", "bool"}, {"skip-headers", "bool"},
	{"skip-log-headers", "bool"}, {"stderrthreshold", "string"},
}

// NewFlags registers every flag on a new flag set named after the binary.
func NewFlags(name string) *Flags {
	f := &Flags{fs: pflag.NewFlagSet(name, pflag.ContinueOnError)}
	fs := f.fs
	// klog-style flags are accepted with _ or - as word separator.
	fs.SetNormalizeFunc(cliflag.WordSepNormalizeFunc)

	// Listeners.
	fs.StringVar(&f.SecureListenAddress, "secure-listen-address", "", "The address the HTTPS server listens on, host:port.")
	fs.StringVar(&f.InsecureListenAddress, "insecure-listen-address", "", "[DEPRECATED] The address a plain HTTP server listens on. Client certificates cannot be used there.")
	fs.IntVar(&f.ProxyEndpointsPort, "proxy-endpoints-port", 0, "The port to serve /healthz, /readyz and /metrics on over HTTPS with the serving certificate, on the host of --secure-listen-address. 0 disables it.")
	fs.StringArrayVar(&f.ProbePassthrough, "probe-passthrough", nil, "Repeatable [http:|https:]METHOD:PORT:PATH[?QUERY]: the endpoints port serves /probe/PORT/PATH without credentials by forwarding exactly that request (GET or HEAD, that path and query) to the app on 127.0.0.1:PORT, for kubelet probes.")

	// Upstream.
	fs.StringVar(&f.Upstream, "upstream", "", "The upstream URL authorized requests are proxied to: http://host:port/, https://host:port/ or unix:///path/to.sock.")
	fs.BoolVar(&f.UpstreamForceH2C, "upstream-force-h2c", false, "Speak HTTP/2 cleartext (h2c) to the upstream, for upstreams that speak only h2c.")
	fs.StringVar(&f.UpstreamCAFile, "upstream-ca-file", "", "The CA bundle the upstream's TLS certificate is verified against; reloaded when it changes. Default: the system roots.")
	fs.StringVar(&f.UpstreamClientCertFile, "upstream-client-cert-file", "", "Client certificate presented to the upstream; reloaded when it changes. Requires --upstream-client-key-file.")
	fs.StringVar(&f.UpstreamClientKeyFile, "upstream-client-key-file", "", "The key of --upstream-client-cert-file. Requires --upstream-client-cert-file.")
	fs.BoolVar(&f.UpstreamInsecureSkipVerify, "upstream-insecure-skip-verify", false, "Do not verify the upstream's TLS certificate. Only allowed for a loopback upstream (127.0.0.0/8, ::1, localhost).")
	fs.StringSliceVar(&f.AllowedUpgrades, "allowed-upgrades", nil, "Comma-separated protocols (Upgrade header values, for example websocket) an authenticated and authorized request may switch to; never on --ignore-paths. h2c is always refused. Default: none, an upgrade request gets 400.")
	fs.DurationVar(&f.UpstreamTimeout, "upstream-timeout", DefaultUpstreamTimeout, "How long an exchange with the upstream, response body included, may take when the request carries no X-Prometheus-Scrape-Timeout-Seconds; past it the answer is 504. 0 means no bound.")

	// Serving TLS.
	fs.StringVar(&f.TLSCertFile, "tls-cert-file", "", "Serving certificate (CA certificates, if any, concatenated after it); reloaded when it changes. Default: a generated self-signed certificate.")
	fs.StringVar(&f.TLSKeyFile, "tls-private-key-file", "", "The key of --tls-cert-file; reloaded when it changes.")
	fs.StringVar(&f.TLSMinVersion, "tls-min-version", DefaultTLSMinVersionName, "Minimum TLS version: VersionTLS10, VersionTLS11, VersionTLS12 or VersionTLS13. VersionTLS10 and VersionTLS11 are accepted with a warning.")
	fs.StringSliceVar(&f.TLSCipherSuites, "tls-cipher-suites", nil, "Comma-separated cipher suites for TLS 1.2 and below, by Go constant name. Default: the ECDHE suites with AES-GCM or ChaCha20-Poly1305. Weaker suites (CBC, RC4, 3DES, RSA key exchange) are accepted with a warning naming them.")
	fs.DurationVar(&f.TLSReloadInterval, "tls-reload-interval", time.Minute, "[DEPRECATED] Ignored: certificate files are checked every second.")
	fs.StringVar(&f.ClientCAFile, "client-ca-file", "", "CA bundle for client certificates: a verified certificate authenticates as user CN with groups O. Reloaded when it changes.")

	// Paths.
	fs.StringSliceVar(&f.AllowPaths, "allow-paths", nil, "Comma-separated path.Match patterns; a request whose cleaned path matches none gets 404. Cannot be used with --ignore-paths.")
	fs.StringSliceVar(&f.IgnorePaths, "ignore-paths", nil, "Comma-separated path.Match patterns; a request whose cleaned path matches is proxied without authentication or authorization. Cannot be used with --allow-paths.")

	// Authentication.
	fs.StringSliceVar(&f.AuthTokenAudiences, "auth-token-audiences", []string{}, "Comma-separated audiences a bearer token must have (at least one). Default: the API server's.")
	fs.BoolVar(&f.AuthHeaderEnabled, "auth-header-fields-enabled", false, "Tell the upstream the caller's user and groups in the headers named below.")
	fs.StringVar(&f.AuthHeaderUserField, "auth-header-user-field-name", DefaultUserField, "The header that carries the caller's user name to the upstream.")
	fs.StringVar(&f.AuthHeaderGroupsField, "auth-header-groups-field-name", DefaultGroupsField, "The header that carries the caller's groups to the upstream.")
	fs.StringVar(&f.AuthHeaderGroupSeparator, "auth-header-groups-field-separator", DefaultGroupSeparator, "The separator between groups in the groups header.")
	f.addServiceAccountFlags(fs)

	// Authorization.
	fs.StringVar(&f.Authz, "authz", string(AuthzSAR), "Authorization mode: sar (static rules, then a SubjectAccessReview) or static (static rules only, no API call).")
	fs.StringSliceVar(&f.AllowedUsers, "allowed-users", nil, "Comma-separated users (token user names or certificate CNs) allowed on every served path. Only with --authz=static.")
	fs.StringSliceVar(&f.AllowedGroups, "allowed-groups", nil, "Comma-separated groups allowed on every served path. Only with --authz=static.")
	fs.StringVar(&f.ResourceAttributes, "resource-attributes", "", "Resource attributes of the SubjectAccessReview, as key=value pairs: namespace, apigroup, apiversion, resource, subresource, name. Same as the config file's authorization.resourceAttributes.")
	fs.StringVar(&f.ConfigFile, "config-file", "", "kube-rbac-proxy configuration file (authorization.rewrites, .resourceAttributes, .static; rbac-proxy's .tenancy).")
	f.addTenancyFlags(fs)

	// Caches.
	fs.DurationVar(&f.TokenCacheTTL, "authentication-token-webhook-cache-ttl", DefaultTokenSuccessTTL, "How long an authenticated token review is cached.")
	fs.DurationVar(&f.TokenCacheUnauthorizedTTL, "authentication-token-webhook-cache-unauthorized-ttl", DefaultTokenFailureTTL, "How long a rejected token review is cached.")
	fs.DurationVar(&f.AuthzCacheAuthorizedTTL, "authorization-webhook-cache-authorized-ttl", DefaultAuthorizedTTL, "How long an allowed SubjectAccessReview is cached.")
	fs.DurationVar(&f.AuthzCacheUnauthorizedTTL, "authorization-webhook-cache-unauthorized-ttl", DefaultUnauthorizedTTL, "How long a denied SubjectAccessReview is cached.")
	fs.DurationVar(&f.StaleCacheTTL, "stale-cache-ttl", 0, "While the API server cannot answer, keep using expired review results for this long past their TTL. 0 disables it.")
	fs.IntVar(&f.CacheMaxEntries, "cache-max-entries", DefaultCacheMaxEntries, "Maximum entries in each review cache.")

	// API server.
	fs.StringVar(&f.Kubeconfig, "kubeconfig", "", "Path to a kubeconfig for the API server. Default: in-cluster configuration.")
	fs.Float32Var(&f.KubeAPIQPS, "kube-api-qps", 0, fmt.Sprintf("Client-side QPS limit towards the API server. 0 means %v.", DefaultKubeAPIQPS))
	fs.IntVar(&f.KubeAPIBurst, "kube-api-burst", 0, fmt.Sprintf("Client-side burst towards the API server. 0 means %v.", DefaultKubeAPIBurst))
	fs.DurationVar(&f.KubeAPITimeout, "kube-api-timeout", DefaultKubeAPITimeout, "Upper bound of one TokenReview or SubjectAccessReview call.")

	// HTTP server.
	fs.BoolVar(&f.HTTP2Disable, "http2-disable", false, "Disable HTTP/2 on the listeners.")
	fs.Uint32Var(&f.HTTP2MaxConcurrentStreams, "http2-max-concurrent-streams", DefaultHTTP2MaxConcurrentStreams, "The maximum number of concurrent streams per HTTP/2 connection.")
	fs.Uint32Var(&f.HTTP2MaxSize, "http2-max-size", DefaultHTTP2MaxSize, "The maximum HTTP/2 frame size and per-stream receive buffer, in bytes.")
	fs.DurationVar(&f.ReadHeaderTimeout, "read-header-timeout", DefaultReadHeaderTimeout, "How long a client may take to send the request headers.")
	fs.DurationVar(&f.IdleTimeout, "idle-timeout", DefaultIdleTimeout, "How long an idle keep-alive connection is kept open.")
	fs.IntVar(&f.MaxHeaderBytes, "max-header-bytes", DefaultMaxHeaderBytes, "Maximum size of the request headers; larger requests get 431.")
	fs.DurationVar(&f.ShutdownGracePeriod, "shutdown-grace-period", DefaultShutdownGracePeriod, "How long in-flight requests may drain after SIGTERM.")
	fs.DurationVar(&f.RequestBodyTimeout, "request-body-timeout", DefaultRequestBodyTimeout, "How long a client may take to send a request body, counted from the end of its headers; a slower body is cut and its connection closed.")
	fs.IntVar(&f.MaxConnections, "max-connections", DefaultMaxConnections, "Maximum connections open at once on the proxy port; further clients wait in the kernel's accept queue until one closes. The default fits the sidecar's 128 MiB memory limit.")

	// JWT authenticators: tokens verified locally instead of by TokenReview.
	fs.StringVar(&f.OIDCIssuer, "oidc-issuer", "", "The URL of an OpenID Connect issuer (https:// only). When set, bearer tokens are verified as its ID tokens (signature by its published keys, issuer, audience --oidc-clientID, expiry) and no TokenReview is sent.")
	fs.StringVar(&f.OIDCClientID, "oidc-clientID", "", "The audience an --oidc-issuer token must have. Required with --oidc-issuer.")
	fs.StringVar(&f.OIDCGroupsClaim, "oidc-groups-claim", DefaultOIDCGroupsClaim, "The claim of an --oidc-issuer token the groups come from (a string or a list of strings).")
	fs.StringVar(&f.OIDCUsernameClaim, "oidc-username-claim", DefaultOIDCUsernameClaim, "The claim of an --oidc-issuer token the user name comes from. With email, a token whose email_verified is false is refused.")
	fs.StringVar(&f.OIDCUsernamePrefix, "oidc-username-prefix", "", "Prepended to every --oidc-issuer user name, to keep it apart from other users (for example oidc:).")
	fs.StringVar(&f.OIDCGroupsPrefix, "oidc-groups-prefix", "", "Prepended to every --oidc-issuer group, to keep them apart from other groups (for example oidc:).")
	fs.StringArrayVar(&f.OIDCSignAlgs, "oidc-sign-alg", []string{DefaultOIDCSigningAlg}, "Repeatable: a JOSE algorithm --oidc-issuer tokens may be signed with (RS256, RS384, RS512, ES256, ES384, ES512, PS256, PS384, PS512).")
	fs.StringVar(&f.OIDCCAFile, "oidc-ca-file", "", "The CA bundle the --oidc-issuer's TLS certificate is verified against. Default: the host's roots.")
	fs.StringVar(&f.JWTConfigFile, "authentication-config", "", "A kube-apiserver AuthenticationConfiguration file (apiserver.config.k8s.io/v1; only its jwt section): JWT issuers with audiences, CEL claim mappings and validation rules verify bearer tokens instead of TokenReview. Reloaded when it changes; a bad new file keeps the last good one. Cannot be used with --oidc-issuer.")

	// Logging and global flags.
	fs.IntVarP(&f.Verbosity, "v", "v", 0, "Log verbosity: 0 logs start-up and errors, 2 adds refusals, 4 and up add per-request detail. Tokens are never logged.")
	fs.StringVar(&f.VModule, "vmodule", "", "[DEPRECATED] Ignored.")
	fs.BoolVar(&f.Version, "version", false, "Print the version and exit.")
	fs.BoolVarP(&f.Help, "help", "h", false, "Print this help and exit.")
	for _, rf := range removedLogFlags {
		switch rf.kind {
		case "bool":
			fs.Bool(rf.name, false, "[DEPRECATED] Ignored.")
		case "string":
			fs.String(rf.name, "", "[DEPRECATED] Ignored.")
		case "uint64":
			fs.Uint64(rf.name, 0, "[DEPRECATED] Ignored.")
		}
		_ = fs.MarkHidden(rf.name)
	}
	return f
}

// FlagSet is the underlying flag set (for usage and docs).
func (f *Flags) FlagSet() *pflag.FlagSet { return f.fs }

// Parse parses the command line. Positional arguments are refused.
func (f *Flags) Parse(args []string) error {
	f.fs.Usage = func() {}
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	if f.fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: rbac-proxy takes only flags", f.fs.Arg(0))
	}
	return nil
}

// Warnings lists the deprecated or ignored flags that were set, and (after
// Config) what of the config file is ignored.
func (f *Flags) Warnings() []string {
	w := append([]string(nil), f.configWarnings...)
	changed := func(name string) bool { return f.fs.Changed(name) }
	if changed("insecure-listen-address") {
		w = append(w, "--insecure-listen-address is deprecated: serve over TLS with --secure-listen-address")
	}
	if changed("tls-reload-interval") {
		w = append(w, "--tls-reload-interval is deprecated and ignored: certificate files are checked every second")
	}
	if changed("vmodule") {
		w = append(w, "--vmodule is ignored")
	}
	for _, rf := range removedLogFlags {
		if changed(rf.name) {
			w = append(w, fmt.Sprintf("--%s is deprecated and ignored: logs go to stderr", rf.name))
		}
	}
	if f.OIDCIssuer == "" {
		for _, name := range oidcFlagsWithoutIssuer {
			if changed(name) {
				w = append(w, fmt.Sprintf("--%s has no effect without --oidc-issuer", name))
			}
		}
	}
	if (f.UpstreamCAFile != "" || f.UpstreamClientCertFile != "") && !strings.HasPrefix(f.Upstream, "https://") {
		w = append(w, "--upstream-ca-file and --upstream-client-cert-file are ignored: the upstream is not https://")
	}
	if f.ClientCAFile != "" && f.SecureListenAddress == "" {
		w = append(w, "--client-ca-file has no effect without --secure-listen-address: plain HTTP carries no client certificate")
	}
	w = append(w, tlsWarnings(f.TLSMinVersion, f.TLSCipherSuites)...)
	if f.SecureListenAddress != "" && f.TLSCertFile == "" {
		w = append(w, "no --tls-cert-file: serving a generated self-signed certificate")
	}
	return w
}

// Config turns the flags (and the config file they name) into a validated
// Config.
func (f *Flags) Config() (*Config, error) {
	cfg, err := f.build()
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Default is the Config of the flags' defaults: a start for a Config built
// by hand, which Args renders as only what was changed. It does not
// validate: it has no listen address and no upstream.
func Default() *Config {
	cfg, err := NewFlags("rbac-proxy").build()
	if err != nil {
		panic("config: the flag defaults do not parse: " + err.Error())
	}
	return cfg
}

// build is Config without the validation.
// It reports every flag that does not parse; validation is left for
// Config, which needs them all parsed.
func (f *Flags) build() (*Config, error) {
	var errs field.ErrorList
	minVersion, err := cliflag.TLSVersion(f.TLSMinVersion)
	if err != nil {
		errs = append(errs, field.NotSupported(flag("--tls-min-version"), f.TLSMinVersion, cliflag.TLSPossibleVersions()))
	}
	var suites []uint16
	for _, name := range f.TLSCipherSuites {
		ids, err := cliflag.TLSCipherSuites([]string{name})
		if err != nil {
			allowed := cliflag.TLSCipherPossibleValues()
			sort.Strings(allowed)
			errs = append(errs, field.NotSupported(flag("--tls-cipher-suites"), name, allowed))
			continue
		}
		suites = append(suites, ids...)
	}

	cfg := &Config{
		Listen: ListenConfig{
			SecureAddress:      f.SecureListenAddress,
			InsecureAddress:    f.InsecureListenAddress,
			ProxyEndpointsPort: f.ProxyEndpointsPort,
		},
		TLS: ServingTLS{
			CertFile:       f.TLSCertFile,
			KeyFile:        f.TLSKeyFile,
			ClientCAFile:   f.ClientCAFile,
			MinVersion:     minVersion,
			CipherSuites:   suites,
			ReloadInterval: DefaultReloadInterval,
		},
		HTTP2: HTTP2Config{
			Disable:              f.HTTP2Disable,
			MaxConcurrentStreams: f.HTTP2MaxConcurrentStreams,
			MaxSize:              f.HTTP2MaxSize,
		},
		Limits: ServerLimits{
			ReadHeaderTimeout:   f.ReadHeaderTimeout,
			IdleTimeout:         f.IdleTimeout,
			MaxHeaderBytes:      f.MaxHeaderBytes,
			ShutdownGracePeriod: f.ShutdownGracePeriod,
			RequestBodyTimeout:  f.RequestBodyTimeout,
			MaxConnections:      f.MaxConnections,
		},
		Upstream: UpstreamConfig{
			ForceH2C:           f.UpstreamForceH2C,
			CAFile:             f.UpstreamCAFile,
			ClientCertFile:     f.UpstreamClientCertFile,
			ClientKeyFile:      f.UpstreamClientKeyFile,
			InsecureSkipVerify: f.UpstreamInsecureSkipVerify,
			AllowedUpgrades:    f.AllowedUpgrades,
			Timeout:            f.UpstreamTimeout,
		},
		Paths: PathPolicy{Allow: f.AllowPaths, Ignore: f.IgnorePaths},
		Authentication: AuthenticationConfig{
			Audiences: f.AuthTokenAudiences,
			Header: IdentityHeaders{
				Enabled:        f.AuthHeaderEnabled,
				UserField:      f.AuthHeaderUserField,
				GroupsField:    f.AuthHeaderGroupsField,
				GroupSeparator: f.AuthHeaderGroupSeparator,
			},
			ServiceAccounts: f.serviceAccountTokens(),
			OIDC: OIDCConfig{
				IssuerURL:      f.OIDCIssuer,
				ClientID:       f.OIDCClientID,
				CAFile:         f.OIDCCAFile,
				UsernameClaim:  f.OIDCUsernameClaim,
				UsernamePrefix: f.OIDCUsernamePrefix,
				GroupsClaim:    f.OIDCGroupsClaim,
				GroupsPrefix:   f.OIDCGroupsPrefix,
				SigningAlgs:    f.OIDCSignAlgs,
			},
			JWTConfigFile: f.JWTConfigFile,
		},
		Authorization: AuthorizationConfig{
			Mode:    AuthzMode(f.Authz),
			Allowed: AllowedSubjects{Users: f.AllowedUsers, Groups: f.AllowedGroups},
			Tenancy: f.tenancy(),
		},
		Cache: CacheConfig{
			TokenSuccessTTL: f.TokenCacheTTL,
			TokenFailureTTL: f.TokenCacheUnauthorizedTTL,
			AuthorizedTTL:   f.AuthzCacheAuthorizedTTL,
			UnauthorizedTTL: f.AuthzCacheUnauthorizedTTL,
			StaleTTL:        f.StaleCacheTTL,
			MaxEntries:      f.CacheMaxEntries,
		},
		KubeAPI: KubeAPIConfig{
			Kubeconfig: f.Kubeconfig,
			QPS:        f.KubeAPIQPS,
			Burst:      f.KubeAPIBurst,
			Timeout:    f.KubeAPITimeout,
		},
		Log: LogConfig{Verbosity: f.Verbosity},
	}
	if cfg.KubeAPI.QPS == 0 {
		cfg.KubeAPI.QPS = DefaultKubeAPIQPS
	}
	if cfg.KubeAPI.Burst == 0 {
		cfg.KubeAPI.Burst = DefaultKubeAPIBurst
	}

	for _, v := range f.ProbePassthrough {
		p, err := ParseProbePassthrough(v)
		if err != nil {
			errs = append(errs, asFieldError(flag("--probe-passthrough"), v, err))
			continue
		}
		cfg.Listen.ProbePassthrough = append(cfg.Listen.ProbePassthrough, p)
	}

	if f.Upstream != "" {
		u, err := url.Parse(f.Upstream)
		if err != nil {
			errs = append(errs, field.Invalid(flag("--upstream"), f.Upstream, "not a URL: "+err.Error()))
		}
		cfg.Upstream.URL = u
	}

	if f.ResourceAttributes != "" {
		ra, err := ParseResourceAttributes(f.ResourceAttributes)
		if err != nil {
			errs = append(errs, asFieldError(flag("--resource-attributes"), f.ResourceAttributes, err))
		}
		cfg.Authorization.ResourceAttributes = ra
	}
	if f.ConfigFile != "" {
		cf, err := LoadConfigFile(f.ConfigFile)
		if err != nil {
			errs = append(errs, asFieldError(flag("--config-file"), f.ConfigFile, err))
		} else if a := cf.Authorization; a != nil {
			if a.Rewrites != nil && a.ResourceAttributes == nil && cfg.Authorization.ResourceAttributes == nil {
				// kube-rbac-proxy ignores them too; say so rather than refuse a working file.
				f.configWarnings = append(f.configWarnings, "config file authorization.rewrites is ignored: it only applies to resourceAttributes")
			}
			if a.ResourceAttributes != nil && cfg.Authorization.ResourceAttributes != nil {
				errs = append(errs, field.Invalid(flag("--resource-attributes"), f.ResourceAttributes, "cannot be used when the config file sets authorization.resourceAttributes"))
			}
			if a.ResourceAttributes != nil {
				cfg.Authorization.ResourceAttributes = a.ResourceAttributes
			}
			cfg.Authorization.Rewrites = a.Rewrites
			cfg.Authorization.Static = a.Static
			if a.Tenancy != nil {
				errs = append(errs, f.applyFileTenancy(a.Tenancy, &cfg.Authorization.Tenancy)...)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errs.ToAggregate()
	}
	return cfg, nil
}

// asFieldError is err as the *field.Error the parsers return, or as one on
// fld.
func asFieldError(fld *field.Path, value any, err error) *field.Error {
	var fe *field.Error
	if errors.As(err, &fe) {
		return fe
	}
	return field.Invalid(fld, value, err.Error())
}
