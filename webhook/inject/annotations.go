package inject

import "strings"

// Prefix is the common prefix of every label and annotation the injector reads or writes.
const Prefix = "rbac-proxy.io/"

// Names of the labels and annotations.
const (
	// LabelInject on a Namespace (value "enabled") turns injection on for every Pod in it.
	// On a Pod, as a label or an annotation, "true" or "false" opts the Pod in or out.
	LabelInject = Prefix + "inject"
	// NamespaceInjectEnabled is the value of LabelInject on a Namespace that enables injection.
	NamespaceInjectEnabled = "enabled"

	AnnotationInject                 = Prefix + "inject"
	AnnotationStatus                 = Prefix + "status"
	AnnotationPort                   = Prefix + "port"
	AnnotationProxyPort              = Prefix + "proxy-port"
	AnnotationEndpointsPort          = Prefix + "proxy-endpoints-port"
	AnnotationUpstreamScheme         = Prefix + "upstream-scheme"
	AnnotationAuthz                  = Prefix + "authz"
	AnnotationAllowedClients         = Prefix + "allowed-clients"
	AnnotationAllowedGroups          = Prefix + "allowed-groups"
	AnnotationResourceAttributes     = Prefix + "resource-attributes"
	AnnotationTenancy                = Prefix + "tenancy"
	AnnotationTenancyNamespaceLabels = Prefix + "tenancy-namespace-labels"
	AnnotationClientCA               = Prefix + "client-ca"
	AnnotationTokenAudiences         = Prefix + "token-audiences"
	AnnotationTokenVerification      = Prefix + "token-verification"
	AnnotationAllowPaths             = Prefix + "allow-paths"
	AnnotationIgnorePaths            = Prefix + "ignore-paths"
	AnnotationTLSSecret              = Prefix + "tls-secret"
	AnnotationIssuer                 = Prefix + "issuer"
	AnnotationDNSNames               = Prefix + "dns-names"
	AnnotationPortMode               = Prefix + "port-mode"
	AnnotationPreset                 = Prefix + "preset"
	AnnotationUpstreamListen         = Prefix + "upstream-listen"
	AnnotationUpstreamPort           = Prefix + "upstream-port"

	// LabelStatus carries StatusInjected too, as a label: the certificate controller's informer
	// selects injected Pods by it. A Pod author can set it; the controller verifies the Pod.
	LabelStatus = Prefix + "status"

	// StatusInjected is the value of AnnotationStatus on a Pod the injector has rendered.
	StatusInjected = "injected"

	// PrometheusPortAnnotation and PrometheusSchemeAnnotation are the scrape hints that, when they
	// point at the protected port, are moved to the proxy.
	PrometheusPortAnnotation   = "prometheus.io/port"
	PrometheusSchemeAnnotation = "prometheus.io/scheme"
)

// AnnotationSpec documents one annotation: what it accepts, its default and the proxy flags it
// sets. The table returned by Annotations is the single list the parser checks unknown keys
// against, takes each annotation's allowed text from, and docs/annotations.md is generated from.
type AnnotationSpec struct {
	Name string
	// Allowed is what the annotation accepts, in Markdown; denials quote it without the backticks.
	Allowed string
	Default string
	// Flags are the proxy flags the annotation sets, for the docs: the render never writes a
	// flag name (config.Args does), and a test checks that the annotation's rendered command line
	// carries them.
	Flags       []string
	Description string
}

// Annotations returns every annotation a user may set on a Pod (or its template), in the order
// they are documented.
func Annotations() []AnnotationSpec {
	return []AnnotationSpec{
		{
			Name:        AnnotationInject,
			Allowed:     "`true`, `false` (label or annotation)",
			Default:     "the Namespace label `rbac-proxy.io/inject=enabled`",
			Description: "Opts the Pod in (any namespace the webhook serves) or out (a labelled namespace).",
		},
		{
			Name:        AnnotationPort,
			Allowed:     "a TCP port name declared by an app container, or a port number 1-65535",
			Default:     "the port named `metrics`, else the Pod's only declared port",
			Flags:       []string{"--upstream"},
			Description: "The app port the proxy protects; the proxy reaches it on `127.0.0.1`.",
		},
		{
			Name:        AnnotationPortMode,
			Allowed:     "`rename`, `takeover`, `redirect` (not with `hostNetwork`, nor where the namespace enforces Pod Security `baseline` or `restricted`)",
			Default:     "`takeover` when a preset applies or `upstream-listen` is set, else `rename`",
			Flags:       []string{"--secure-listen-address", "--upstream"},
			Description: "`rename`: the proxy listens on its own port and takes the protected port's name; `takeover`: the proxy listens on the protected port's own number and name, and the app is moved to `127.0.0.1:<upstream-port>`; `redirect`: the app is unchanged, the proxy listens on its own port and an init container with `NET_ADMIN` redirects the Pod's inbound connections to the protected port to it (nftables), except the proxy's own.",
		},
		{
			Name:        AnnotationPreset,
			Allowed:     code(presetNames()...) + "; not with `upstream-listen` (`takeover` only)",
			Default:     "detected from the app container's image name, env or args",
			Description: "How `takeover` moves the app to `127.0.0.1` (see [Presets](#presets)).",
		},
		{
			Name:        AnnotationUpstreamListen,
			Allowed:     "comma-separated `env:NAME=VALUE` or `arg:--flag=VALUE`; VALUE may use `{host}` (`127.0.0.1`) and `{port}` (the upstream port), at least one `{port}`; not with `preset` (`takeover` only)",
			Description: "How `takeover` moves an app no preset knows, e.g. `env:LISTEN_ADDR={host}:{port}` or `arg:--metrics-bind-address={host}:{port}`.",
		},
		{
			Name:        AnnotationUpstreamPort,
			Allowed:     "a number 1-65535 not declared by the Pod (`takeover` only)",
			Default:     "the protected port + 10000 (the next free one)",
			Flags:       []string{"--upstream", "--probe-passthrough"},
			Description: "The internal port the app is moved to on `127.0.0.1` in `takeover` mode.",
		},
		{
			Name:        AnnotationProxyPort,
			Allowed:     "a number 1-65535 not declared by the Pod (`rename` and `redirect`)",
			Default:     "webhook `--proxy-port` (8443)",
			Flags:       []string{"--secure-listen-address"},
			Description: "The port the proxy listens on in `rename` mode, where it takes over the protected port's name, and in `redirect` mode, where connections to the protected port are sent to it.",
		},
		{
			Name:        AnnotationEndpointsPort,
			Allowed:     "a number 1-65535 not declared by the Pod",
			Default:     "webhook `--proxy-endpoints-port` (8444)",
			Flags:       []string{"--proxy-endpoints-port", "--probe-passthrough"},
			Description: "The proxy's own `/healthz`, `/readyz` and `/metrics` (HTTPS); its probes use it, and so do the app's probes of the protected port, through `/probe/<port>/<path>`.",
		},
		{
			Name:        AnnotationUpstreamScheme,
			Allowed:     "`http`, `https`",
			Default:     "`http`",
			Flags:       []string{"--upstream", "--upstream-insecure-skip-verify"},
			Description: "How the proxy talks to the app on loopback; `https` skips verification of the app's certificate.",
		},
		{
			Name:        AnnotationAuthz,
			Allowed:     "`sar`, `static`",
			Default:     "`sar`",
			Flags:       []string{"--authz"},
			Description: "`sar`: a SubjectAccessReview per request; `static`: only the listed clients and groups.",
		},
		{
			Name:        AnnotationAllowedClients,
			Allowed:     "comma-separated user names / certificate CNs, without double quotes (`\"`) (`static` only)",
			Flags:       []string{"--allowed-users"},
			Description: "Clients allowed with `authz: static`.",
		},
		{
			Name:        AnnotationAllowedGroups,
			Allowed:     "comma-separated group names / certificate Os, without double quotes (`\"`) (`static` only)",
			Flags:       []string{"--allowed-groups"},
			Description: "Groups allowed with `authz: static`.",
		},
		{
			Name:        AnnotationResourceAttributes,
			Allowed:     "comma-separated `key=value`, keys `namespace`, `apigroup`, `apiversion`, `resource`, `subresource`, `name`; `resource` required (`sar` only)",
			Flags:       []string{"--resource-attributes"},
			Description: "Authorize against a resource instead of the request path, e.g. `namespace=gpu,resource=services,subresource=proxy,name=dcgm-exporter`.",
		},
		{
			Name:        AnnotationTenancy,
			Allowed:     "`namespace`",
			Default:     "off: a caller not allowed the endpoint gets 403",
			Flags:       []string{"--tenancy"},
			Description: "A caller that is not allowed the whole endpoint gets, instead of 403, the series whose namespace label names a namespace where it may `get pods` (a SubjectAccessReview per namespace, cached), and 403 when there is none (see [tenancy](tenancy.md)). Also with `authz: static`: the Pod's ServiceAccount then needs to create SubjectAccessReviews too.",
		},
		{
			Name:        AnnotationTenancyNamespaceLabels,
			Allowed:     "comma-separated Prometheus label names (`tenancy: namespace` only)",
			Default:     "`namespace,exported_namespace`",
			Flags:       []string{"--tenancy-namespace-labels"},
			Description: "The labels that name a series' namespace: a tenant sees a series that has one of them when it may read every namespace those it has name; a series with none is withheld from tenants.",
		},
		{
			Name:        AnnotationClientCA,
			Allowed:     "`scrapers`, `configmap:NAME[/KEY]`, `secret:NAME[/KEY]` (KEY defaults to `ca.crt`)",
			Flags:       []string{"--client-ca-file"},
			Description: "Turns on client-certificate authentication. `scrapers` trusts the injector's own CA of scrapers' client certificates (webhook `--scrapers-ca-secret`), which signs no workload's serving certificate; the injector keeps it in the ConfigMap `" + ScrapersCAConfigMap + "` of the Pod's namespace. `issuer` is refused: the CA that signs serving certificates must never authenticate clients.",
		},
		{
			Name:        AnnotationTokenAudiences,
			Allowed:     "comma-separated audiences, without double quotes (`\"`); with `token-verification: local`, the proxy's own: no audience of the API server (`api`, `kubernetes.default.svc[.cluster.local]`) and no `https://` URL (the cluster's service-account issuer is one)",
			Default:     "`review`: the API server's audiences; `local`: `" + LocalAudience("<namespace>") + "`",
			Flags:       []string{"--auth-token-audiences"},
			Description: "Audiences a bearer token must carry (at least one). In `local` mode the default `" + LocalAudience("<namespace>") + "` is what a scraper's projected ServiceAccount token asks for (`serviceAccountToken.audience`): the API server accepts no such token, and one sent to the proxies of one namespace is refused by those of the other namespaces that keep the default.",
		},
		{
			Name:        AnnotationTokenVerification,
			Allowed:     code(tokenVerificationNames()...),
			Default:     "webhook `--default-token-verification` (`review`)",
			Flags:       []string{"--service-account-token-verification", "--auth-token-audiences"},
			Description: "`review`: every bearer token is sent to a TokenReview (cached); `local`: ServiceAccount tokens are verified by the proxy with the keys the API server publishes (`/.well-known/openid-configuration`, `/openid/v1/jwks`, which the default `system:service-account-issuer-discovery` binding lets the proxy's ServiceAccount token read) and cost no TokenReview; other bearer tokens are still reviewed, for the same audiences. No revocation before a token expires (see [security](security.md)); the proxy requires an audience of its own (`token-audiences`).",
		},
		{
			Name:        AnnotationAllowPaths,
			Allowed:     "comma-separated `path.Match` patterns starting with `/` (`*`, `?`, `[a-z]`, `\\` escapes), without double quotes (`\"`); not with `ignore-paths`",
			Flags:       []string{"--allow-paths"},
			Description: "Only these paths are proxied; everything else is refused.",
		},
		{
			Name:        AnnotationIgnorePaths,
			Allowed:     "comma-separated `path.Match` patterns starting with `/` (`*`, `?`, `[a-z]`, `\\` escapes), without double quotes (`\"`); not with `allow-paths`",
			Flags:       []string{"--ignore-paths"},
			Description: "These paths are proxied without authentication or authorization.",
		},
		{
			Name:        AnnotationTLSSecret,
			Allowed:     "a Secret name (keys `tls.crt`, `tls.key`); not with `issuer` or `dns-names`",
			Default:     "a cert-manager Certificate per workload",
			Flags:       []string{"--tls-cert-file", "--tls-private-key-file"},
			Description: "Use an existing Secret instead of a Certificate the webhook creates.",
		},
		{
			Name:        AnnotationIssuer,
			Allowed:     IssuerSyntax + " (external issuers), among those the webhook allows (`--allowed-issuers`)",
			Default:     "webhook `--default-issuer`",
			Description: "The issuer that signs the workload's Certificate. Only the default issuer, the issuers listed in `--allowed-issuers` and, with `Issuer/*` there, the Issuers of the Pod's own namespace; anything else denies the Pod.",
		},
		{
			Name:        AnnotationDNSNames,
			Allowed:     "comma-separated DNS names inside the Pod's namespace (`X.NS.svc`, `X.NS.svc.<cluster domain>`, `X.NS`, `*.` wildcards of these) or under a suffix the webhook allows (`--allowed-dns-suffixes`); never the API server's names",
			Description: "Extra SANs on the workload's Certificate, besides `NAME`, `NAME.NS`, `NAME.NS.svc` and `NAME.NS.svc.<cluster domain>`.",
		},
	}
}

// specs are the annotations by name, built once: the parser reads them for every Pod.
var specs = func() map[string]AnnotationSpec {
	m := map[string]AnnotationSpec{}
	for _, a := range Annotations() {
		m[a.Name] = a
	}
	return m
}()

// knownAnnotation reports whether name is a documented annotation or one the injector writes.
func knownAnnotation(name string) bool {
	_, ok := specs[name]
	return ok || name == AnnotationStatus
}

// AllowedOf is what the annotation accepts, as its documentation says it, without the Markdown:
// the "allowed" of a denial that is about the annotation's syntax.
func AllowedOf(name string) string {
	return strings.ReplaceAll(specs[name].Allowed, "`", "")
}

// code writes each item as Markdown code, comma-separated.
func code(items ...string) string {
	return "`" + strings.Join(items, "`, `") + "`"
}
