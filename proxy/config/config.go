// Package config is rbac-proxy's configuration (types, defaults, flags, config file, validation) and Args, its rendering back into flags: the one source the webhook renders the proxy's command line from.
package config

import (
	"net/url"
	"path"
	"time"
)

// Config is the complete, validated configuration of one rbac-proxy. It is
// built from flags and the config file by Flags.Config, or by hand (tests,
// the webhook), and must pass Validate before proxy.New accepts it.
type Config struct {
	Listen         ListenConfig
	TLS            ServingTLS
	HTTP2          HTTP2Config
	Limits         ServerLimits
	Upstream       UpstreamConfig
	Paths          PathPolicy
	Authentication AuthenticationConfig
	Authorization  AuthorizationConfig
	Cache          CacheConfig
	KubeAPI        KubeAPIConfig
	Log            LogConfig
}

// ListenConfig says where the proxy listens.
type ListenConfig struct {
	// SecureAddress is host:port of the HTTPS listener (--secure-listen-address).
	SecureAddress string
	// InsecureAddress is host:port of the deprecated plain HTTP listener
	// (--insecure-listen-address). Client certificates cannot be used there.
	InsecureAddress string
	// ProxyEndpointsPort serves /healthz, /readyz and /metrics over HTTPS on
	// the host of SecureAddress; 0 disables it.
	ProxyEndpointsPort int
	// ProbePassthrough are the kubelet probes the endpoints port forwards to
	// the app on loopback, without credentials (--probe-passthrough).
	ProbePassthrough []ProbePassthrough
}

// ServingTLS is the TLS setup of the listeners.
type ServingTLS struct {
	// CertFile and KeyFile are reloaded from disk when they change. When both
	// are empty a self-signed certificate is generated at start.
	CertFile string
	KeyFile  string
	// ClientCAFile, when set, enables client-certificate authentication; it is
	// reloaded from disk when it changes.
	ClientCAFile string
	MinVersion   uint16
	CipherSuites []uint16
	// ReloadInterval is how often the files above are checked for changes.
	ReloadInterval time.Duration
}

// HTTP2Config tunes the HTTP/2 server.
type HTTP2Config struct {
	Disable              bool
	MaxConcurrentStreams uint32
	// MaxSize bounds the frame size and the per-stream receive buffer.
	MaxSize uint32
}

// ServerLimits hardens the listeners against slow and greedy clients.
type ServerLimits struct {
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
	// ShutdownGracePeriod bounds how long in-flight requests may drain after
	// SIGTERM.
	ShutdownGracePeriod time.Duration
	// RequestBodyTimeout bounds how long a request body may take to arrive,
	// counted from the end of its headers; a slower body is cut.
	RequestBodyTimeout time.Duration
	// MaxConnections bounds the connections open at once on the proxy port
	// (and on the insecure one); further connections wait in the kernel's
	// accept queue until one closes. The default keeps the proxy within the
	// injected sidecar's 128 MiB memory limit when every connection is a
	// hostile idle one (see docs/proxy.md for the figures).
	MaxConnections int
}

// UpstreamConfig is the single backend every authorized request goes to.
type UpstreamConfig struct {
	// URL is http://, https:// or unix:///path/to/socket.
	URL            *url.URL
	ForceH2C       bool
	CAFile         string
	ClientCertFile string
	ClientKeyFile  string
	// InsecureSkipVerify is only accepted for loopback upstreams.
	InsecureSkipVerify bool
	// AllowedUpgrades are the protocols (Upgrade header tokens, such as
	// websocket) an authorized request may switch its connection to
	// (--allowed-upgrades). Empty refuses every upgrade; h2c and other HTTP
	// are never allowed, and no upgrade is allowed on an ignored path.
	AllowedUpgrades []string
	// Timeout bounds an exchange with the upstream, response body included,
	// when the request carries no X-Prometheus-Scrape-Timeout-Seconds; 0
	// means no bound.
	Timeout time.Duration
}

// PathPolicy restricts which paths are served (Allow) or served without any
// authentication or authorization (Ignore). Both are path.Match patterns
// matched against the cleaned request path; at most one may be set.
type PathPolicy struct {
	Allow  []string
	Ignore []string
}

// Serves reports whether a request for the cleaned path is served at all (else 404).
func (p PathPolicy) Serves(cleaned string) bool {
	return len(p.Allow) == 0 || matchAny(p.Allow, cleaned)
}

// Ignores reports whether the cleaned path is served without authentication or
// authorization. The proxy decides each request by it, and the injector's check by it
// whether a proxy leaves its metrics open.
func (p PathPolicy) Ignores(cleaned string) bool {
	return len(p.Ignore) > 0 && matchAny(p.Ignore, cleaned) && p.Serves(cleaned)
}

// matchAny reports whether p matches any of the patterns, which were validated, so
// path.Match cannot fail.
func matchAny(patterns []string, p string) bool {
	for _, pattern := range patterns {
		if ok, _ := path.Match(pattern, p); ok {
			return true
		}
	}
	return false
}

// AuthenticationConfig says how callers are identified and how that identity
// is passed on.
type AuthenticationConfig struct {
	// Audiences are sent in every TokenReview; the token must be valid for at
	// least one of them. Empty means the API server's own audiences.
	Audiences []string
	Header    IdentityHeaders
	// ServiceAccounts is how ServiceAccount tokens are verified.
	ServiceAccounts ServiceAccountTokens
	// OIDC is the --oidc-* issuer. When it or JWTConfigFile is set, bearer
	// tokens are verified by those JWT authenticators alone, as
	// kube-rbac-proxy does with --oidc-issuer: no TokenReview is sent.
	OIDC OIDCConfig
	// JWTConfigFile is --authentication-config: a kube-apiserver
	// AuthenticationConfiguration file whose jwt authenticators verify
	// bearer tokens; reloaded when it changes.
	JWTConfigFile string
}

// IdentityHeaders names the request headers that carry the caller's identity
// to the upstream. Client-sent values of these headers are always removed;
// the proxy sets them only when Enabled.
type IdentityHeaders struct {
	Enabled        bool
	UserField      string
	GroupsField    string
	GroupSeparator string
}

// AuthzMode selects where authorization decisions come from.
type AuthzMode string

const (
	// AuthzSAR decides with the static rules first and then a
	// SubjectAccessReview (kube-rbac-proxy's behaviour).
	AuthzSAR AuthzMode = "sar"
	// AuthzStatic decides with the static rules alone; no API call is made.
	AuthzStatic AuthzMode = "static"
)

// AuthorizationConfig says how an authenticated caller is authorized.
type AuthorizationConfig struct {
	Mode AuthzMode
	// ResourceAttributes, when set, turns the check into a resource check
	// (for example "get services/proxy dcgm-exporter in namespace gpu")
	// instead of a non-resource check on the request path.
	ResourceAttributes *ResourceAttributes
	Rewrites           *Rewrites
	// Static rules allow matching requests without any API call.
	Static []StaticRule
	// Allowed are the subjects the --allowed-users/--allowed-groups flags
	// allow on every served path.
	Allowed AllowedSubjects
	// Tenancy is what a caller that is not allowed gets instead of 403.
	Tenancy Tenancy
}

// MakesSARs reports whether any decision is a SubjectAccessReview: with
// --authz=sar every one may be, and with --tenancy those of tenants are,
// under --authz=static too.
func (a AuthorizationConfig) MakesSARs() bool {
	return a.Mode == AuthzSAR || a.Tenancy.Mode != TenancyOff
}

// AllowedSubjects allows users and groups on every served path.
type AllowedSubjects struct {
	Users  []string
	Groups []string
}

// Empty reports whether no subject is allowed.
func (a AllowedSubjects) Empty() bool { return len(a.Users) == 0 && len(a.Groups) == 0 }

// CacheConfig bounds how long review results are trusted.
type CacheConfig struct {
	TokenSuccessTTL time.Duration
	TokenFailureTTL time.Duration
	AuthorizedTTL   time.Duration
	UnauthorizedTTL time.Duration
	// StaleTTL extends an expired entry's life while the API server cannot
	// answer; 0 disables it.
	StaleTTL time.Duration
	// MaxEntries bounds each cache.
	MaxEntries int
}

// KubeAPIConfig says how to reach the API server for TokenReviews and
// SubjectAccessReviews.
type KubeAPIConfig struct {
	// Kubeconfig is a kubeconfig path; empty means in-cluster configuration.
	Kubeconfig string
	QPS        float32
	Burst      int
	// Timeout bounds every review call, retries included.
	Timeout time.Duration
}

// LogConfig says what the proxy logs.
type LogConfig struct {
	// Verbosity is -v: V(n) messages are logged for n up to it. Tokens are
	// never logged.
	Verbosity int
}

// Defaults shared by the flags and by hand-built configurations.
const (
	DefaultTLSMinVersionName                 = "VersionTLS12"
	DefaultHTTP2MaxConcurrentStreams         = 100
	DefaultHTTP2MaxSize                      = 256 * 1024
	DefaultUserField                         = "x-remote-user"
	DefaultGroupsField                       = "x-remote-groups"
	DefaultGroupSeparator                    = "|"
	DefaultReadHeaderTimeout                 = 10 * time.Second
	DefaultIdleTimeout                       = 120 * time.Second
	DefaultMaxHeaderBytes                    = 64 * 1024
	DefaultShutdownGracePeriod               = 15 * time.Second
	DefaultRequestBodyTimeout                = 30 * time.Second
	DefaultMaxConnections                    = 1000
	DefaultTokenSuccessTTL                   = 2 * time.Minute
	DefaultTokenFailureTTL                   = 10 * time.Second
	DefaultAuthorizedTTL                     = 5 * time.Minute
	DefaultUnauthorizedTTL                   = 30 * time.Second
	DefaultCacheMaxEntries                   = 4096
	DefaultKubeAPITimeout                    = 3 * time.Second
	DefaultKubeAPIQPS                float32 = 50
	DefaultKubeAPIBurst                      = 100
	DefaultReloadInterval                    = time.Second
	// DefaultUpstreamTimeout is a little above Prometheus' default 10 s
	// scrape timeout: a scraper with default settings gives up first.
	DefaultUpstreamTimeout = 15 * time.Second
)
