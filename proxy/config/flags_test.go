package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rbac-proxy/rbac-proxy/internal/testkit"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func parseConfig(t *testing.T, args ...string) (*Config, error) {
	t.Helper()
	f := NewFlags("rbac-proxy")
	if err := f.Parse(args); err != nil {
		return nil, err
	}
	return f.Config()
}

var minimalArgs = []string{"--secure-listen-address=127.0.0.1:8443", "--upstream=http://127.0.0.1:8080/"}

func TestFlagDefaults(t *testing.T) {
	cfg, err := parseConfig(t, minimalArgs...)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"authz", cfg.Authorization.Mode, AuthzSAR},
		{"token ttl", cfg.Cache.TokenSuccessTTL, 2 * time.Minute},
		{"token unauthorized ttl", cfg.Cache.TokenFailureTTL, 10 * time.Second},
		{"authorized ttl", cfg.Cache.AuthorizedTTL, 5 * time.Minute},
		{"unauthorized ttl", cfg.Cache.UnauthorizedTTL, 30 * time.Second},
		{"stale ttl", cfg.Cache.StaleTTL, time.Duration(0)},
		{"user header", cfg.Authentication.Header.UserField, "x-remote-user"},
		{"groups header", cfg.Authentication.Header.GroupsField, "x-remote-groups"},
		{"separator", cfg.Authentication.Header.GroupSeparator, "|"},
		{"header enabled", cfg.Authentication.Header.Enabled, false},
		{"tls min", cfg.TLS.MinVersion, uint16(0x0303)},
		{"h2 streams", cfg.HTTP2.MaxConcurrentStreams, uint32(100)},
		{"h2 size", cfg.HTTP2.MaxSize, uint32(262144)},
		{"endpoints port", cfg.Listen.ProxyEndpointsPort, 0},
		{"qps", cfg.KubeAPI.QPS, DefaultKubeAPIQPS},
		{"burst", cfg.KubeAPI.Burst, DefaultKubeAPIBurst},
		{"api timeout", cfg.KubeAPI.Timeout, 3 * time.Second},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestFlagValidation(t *testing.T) {
	goodCfg := testkit.WriteFile(t, "good.yaml", `
authorization:
  rewrites:
    byQueryParameter:
      name: namespace
  resourceAttributes:
    namespace: "{{ .Value }}"
    resource: services
    subresource: proxy
  static:
  - user:
      name: alice
    resourceRequest: true
    resource: services
`)
	withRA := testkit.WriteFile(t, "ra.yaml", "authorization:\n  resourceAttributes:\n    namespace: gpu\n")
	unknownField := testkit.WriteFile(t, "unknown.yaml", "authorization:\n  resourceAttribute:\n    namespace: gpu\n")
	badTemplate := testkit.WriteFile(t, "tmpl.yaml", "authorization:\n  rewrites:\n    byHttpHeader:\n      name: x-ns\n  resourceAttributes:\n    namespace: \"{{ .Nope }}\"\n")
	staticNoPath := testkit.WriteFile(t, "nopath.yaml", "authorization:\n  static:\n  - user:\n      name: bob\n")
	staticResPath := testkit.WriteFile(t, "respath.yaml", "authorization:\n  static:\n  - user:\n      name: bob\n    resourceRequest: true\n    path: /metrics\n")
	rewritesOnly := testkit.WriteFile(t, "rewrites.yaml", "authorization:\n  rewrites:\n    byQueryParameter:\n      name: ns\n")
	strippedRewrite := testkit.WriteFile(t, "stripped.yaml", "authorization:\n  rewrites:\n    byHttpHeader:\n      name: x_remote_user\n  resourceAttributes:\n    namespace: \"{{ .Value }}\"\n")
	staticOnly := testkit.WriteFile(t, "static.yaml", "authorization:\n  static:\n  - user:\n      name: bob\n    path: /metrics\n")

	checkValidation(t, []validationCase{
		{"minimal", nil, ""},
		{"no listen address", []string{"--secure-listen-address="}, "--secure-listen-address"},
		{"bad listen address", []string{"--secure-listen-address=8443"}, `--secure-listen-address: Invalid value: "8443"`},
		{"no upstream", []string{"--upstream="}, "--upstream"},
		{"ftp upstream", []string{"--upstream=ftp://x/"}, "scheme must be http, https or unix"},
		{"unix upstream", []string{"--upstream=unix:///run/app.sock"}, ""},
		{"unix upstream with host", []string{"--upstream=unix://host/run/app.sock"}, "unix:///absolute/path"},
		{"h2c https", []string{"--upstream=https://127.0.0.1:8080", "--upstream-force-h2c"}, "--upstream-force-h2c"},
		{"h2c http", []string{"--upstream-force-h2c"}, ""},
		{"insecure skip verify loopback", []string{"--upstream=https://127.0.0.1:9443", "--upstream-insecure-skip-verify"}, ""},
		{"insecure skip verify localhost", []string{"--upstream=https://localhost:9443", "--upstream-insecure-skip-verify"}, ""},
		{"insecure skip verify ::1", []string{"--upstream=https://[::1]:9443", "--upstream-insecure-skip-verify"}, ""},
		{"insecure skip verify remote", []string{"--upstream=https://10.0.0.1:9443", "--upstream-insecure-skip-verify"}, "only allowed for a loopback upstream"},
		{"insecure skip verify http", []string{"--upstream-insecure-skip-verify"}, "https://"},
		{"client cert without key", []string{"--upstream-client-cert-file=/x.crt"}, "--upstream-client-key-file"},
		{"tls cert without key", []string{"--tls-cert-file=/x.crt"}, "--tls-private-key-file"},
		{"tls min version", []string{"--tls-min-version=VersionTLS13"}, ""},
		{"bad tls min version", []string{"--tls-min-version=TLS1.2"}, `--tls-min-version: Unsupported value: "TLS1.2": supported values: "VersionTLS10", "VersionTLS11", "VersionTLS12", "VersionTLS13"`},
		{"cipher suite", []string{"--tls-cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"}, ""},
		{"bad cipher suite", []string{"--tls-cipher-suites=TLS_NOPE"}, `--tls-cipher-suites: Unsupported value: "TLS_NOPE"`},
		{"no connections", []string{"--max-connections=0"}, `--max-connections: Invalid value: 0: must be at least 1`},
		{"no body timeout", []string{"--request-body-timeout=0s"}, `--request-body-timeout: Invalid value: "0s": must be positive`},
		{"allow and ignore", []string{"--allow-paths=/metrics", "--ignore-paths=/healthz"}, "cannot be used together with --allow-paths"},
		{"suites without HTTP/2's", []string{"--tls-cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"}, `--tls-cipher-suites: Invalid value: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": HTTP/2 needs`},
		{"suites without HTTP/2's, HTTP/2 disabled", []string{"--tls-cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "--http2-disable"}, ""},
		{"suites without HTTP/2's, TLS 1.3 only", []string{"--tls-cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "--tls-min-version=VersionTLS13"}, ""},
		{"bad pattern", []string{"--allow-paths=/metrics["}, "path.Match"},
		{"relative pattern", []string{"--allow-paths=metrics"}, "starting with /"},
		{"authz bogus", []string{"--authz=rbac"}, `--authz: Unsupported value: "rbac": supported values: "sar", "static"`},
		{"static without rules", []string{"--authz=static"}, "needs at least one rule"},
		{"static with users", []string{"--authz=static", "--allowed-users=a,b"}, ""},
		{"static with groups", []string{"--authz=static", "--allowed-groups=g"}, ""},
		{"static with file rules", []string{"--authz=static", "--config-file=" + staticOnly}, ""},
		{"allowed users with sar", []string{"--allowed-users=a"}, `--allowed-users: Invalid value: "a": only valid with --authz=static`},
		{"allowed groups with sar", []string{"--allowed-groups=g"}, `--allowed-groups: Invalid value: "g": only valid with --authz=static`},
		{"resource attributes", []string{"--resource-attributes=namespace=gpu,resource=services,subresource=proxy,name=dcgm-exporter,apigroup=,apiversion=v1"}, ""},
		{"resource attributes unknown key", []string{"--resource-attributes=namespace=gpu,verb=get"}, `--resource-attributes: Invalid value: "verb": unknown key; allowed keys are apigroup, apiversion, name, namespace, resource, subresource`},
		{"resource attributes no equals", []string{"--resource-attributes=gpu"}, "key=value"},
		{"resource attributes twice", []string{"--resource-attributes=namespace=a,namespace=b"}, "twice"},
		{"resource attributes flag and file", []string{"--resource-attributes=namespace=gpu", "--config-file=" + withRA}, "cannot be used when the config file sets"},
		{"good config file", []string{"--config-file=" + goodCfg}, ""},
		{"missing config file", []string{"--config-file=/does/not/exist.yaml"}, "/does/not/exist.yaml"},
		{"unknown config field", []string{"--config-file=" + unknownField}, `unknown field "resourceAttribute"`},
		{"bad template", []string{"--config-file=" + badTemplate}, "authorization.resourceAttributes.namespace"},
		{"static rule without path", []string{"--config-file=" + staticNoPath}, "static[0].path"},
		{"static resource rule with path", []string{"--config-file=" + staticResPath}, "must not have a path"},
		{"rewrites without resource attributes (ignored, as kube-rbac-proxy does)", []string{"--config-file=" + rewritesOnly}, ""},
		{"rewrites with the resource attributes flag", []string{"--config-file=" + rewritesOnly, "--resource-attributes=namespace={{ .Value }}"}, ""},
		{"rewrite header the proxy strips", []string{"--config-file=" + strippedRewrite}, `authorization.rewrites.byHttpHeader.name: Invalid value: "x_remote_user": is removed from every request`},
		{"allowed upgrades", []string{"--allowed-upgrades=websocket,WebSocket"}, ""},
		{"allowed upgrades h2c", []string{"--allowed-upgrades=websocket,h2c"}, `--allowed-upgrades: Invalid value: "h2c": is never allowed`},
		{"allowed upgrades HTTP", []string{"--allowed-upgrades=HTTP"}, `--allowed-upgrades: Invalid value: "HTTP": is never allowed`},
		{"allowed upgrades not a token", []string{"--allowed-upgrades=web socket"}, `--allowed-upgrades: Invalid value: "web socket": must be a protocol name`},
		{"allowed upgrades with h2c upstream", []string{"--allowed-upgrades=websocket", "--upstream-force-h2c"}, "needs an HTTP/1 upstream"},
		{"negative ttl", []string{"--authentication-token-webhook-cache-ttl=-1s"}, "--authentication-token-webhook-cache-ttl"},
		{"stale ttl", []string{"--stale-cache-ttl=10m"}, ""},
		{"endpoints port", []string{"--proxy-endpoints-port=8444"}, ""},
		{"endpoints port clash", []string{"--proxy-endpoints-port=8443"}, "must differ"},
		{"endpoints port range", []string{"--proxy-endpoints-port=70000"}, "--proxy-endpoints-port"},
		{"h2 size", []string{"--http2-max-size=1024"}, "--http2-max-size"},
		{"bad header name", []string{"--auth-header-user-field-name=x remote"}, "--auth-header-user-field-name"},
		{"same header names", []string{"--auth-header-groups-field-name=X-Remote-User"}, "must differ"},
		{"empty audience", []string{"--auth-token-audiences=a,,b"}, "--auth-token-audiences"},
		{"oidc", []string{"--oidc-issuer=https://issuer.example.com", "--oidc-clientID=app"}, ""},
		{"oidc all flags", []string{"--oidc-issuer=https://issuer.example.com/realms/a", "--oidc-clientID=app", "--oidc-ca-file=/ca.crt", "--oidc-username-claim=sub", "--oidc-username-prefix=oidc:", "--oidc-groups-claim=roles", "--oidc-groups-prefix=oidc:", "--oidc-sign-alg=RS256", "--oidc-sign-alg=ES256"}, ""},
		{"oidc no groups", []string{"--oidc-issuer=https://issuer.example.com", "--oidc-clientID=app", "--oidc-groups-claim="}, ""},
		{"oidc without client ID", []string{"--oidc-issuer=https://issuer.example.com"}, "--oidc-clientID: Required value: the audience tokens of --oidc-issuer must have"},
		{"oidc http issuer", []string{"--oidc-issuer=http://issuer.example.com", "--oidc-clientID=app"}, `--oidc-issuer: Invalid value: "http://issuer.example.com": must be an https:// URL`},
		{"oidc issuer not a URL", []string{"--oidc-issuer=issuer.example.com", "--oidc-clientID=app"}, `--oidc-issuer: Invalid value: "issuer.example.com": must be an https:// URL`},
		{"oidc empty username claim", []string{"--oidc-issuer=https://i.example.com", "--oidc-clientID=app", "--oidc-username-claim="}, "--oidc-username-claim: Required value"},
		{"oidc groups prefix without claim", []string{"--oidc-issuer=https://i.example.com", "--oidc-clientID=app", "--oidc-groups-claim=", "--oidc-groups-prefix=g:"}, `--oidc-groups-prefix: Invalid value: "g:": requires --oidc-groups-claim`},
		{"oidc empty sign alg", []string{"--oidc-issuer=https://i.example.com", "--oidc-clientID=app", "--oidc-sign-alg="}, "--oidc-sign-alg: Required value"},
		{"oidc flags without issuer (kube-rbac-proxy ignores them too)", []string{"--oidc-clientID=app", "--oidc-ca-file=/ca.crt"}, ""},
		{"authentication config", []string{"--authentication-config=/etc/authn.yaml"}, ""},
		{"authentication config and local ServiceAccount tokens", []string{"--authentication-config=/etc/authn.yaml", "--service-account-token-verification=local", "--auth-token-audiences=metrics"}, "--service-account-token-verification: Forbidden: local cannot be used with --oidc-issuer or --authentication-config"},
		{"authentication config and oidc", []string{"--authentication-config=/etc/authn.yaml", "--oidc-issuer=https://i.example.com", "--oidc-clientID=app"}, "--oidc-issuer: Forbidden: --oidc-* and --authentication-config are mutually exclusive"},
		{"negative qps", []string{"--kube-api-qps=-1"}, "--kube-api-qps"},
		{"deprecated flags accepted", []string{"--logtostderr=true", "--v=10", "--tls-reload-interval=2m", "--log_dir=/tmp", "--vmodule=x=1", "--insecure-listen-address=127.0.0.1:8080"}, ""},
		{"positional argument", []string{"extra"}, `unexpected argument "extra"`},
		{"unknown flag", []string{"--nope"}, "unknown flag: --nope"},
	})
}

// validationCase is a command line after minimalArgs and the error it gets.
type validationCase struct {
	name    string
	args    []string
	wantErr string // substring; empty: valid
}

// checkValidation parses each case's command line as the proxy does and checks its error.
func checkValidation(t *testing.T, cases []validationCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig(t, append(append([]string{}, minimalArgs...), tc.args...)...)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("no error, want one containing %q", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("error %q does not contain %q", err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "\n") {
				t.Fatalf("error spans several lines: %q", err)
			}
		})
	}
}

func TestResourceAttributesFlagEqualsConfigFile(t *testing.T) {
	file := testkit.WriteFile(t, "ra.yaml", "authorization:\n  resourceAttributes:\n    namespace: gpu\n    apiGroup: apps\n    apiVersion: v1\n    resource: services\n    subresource: proxy\n    name: dcgm-exporter\n")
	a, err := parseConfig(t, append(minimalArgs, "--config-file="+file)...)
	if err != nil {
		t.Fatal(err)
	}
	b, err := parseConfig(t, append(minimalArgs, "--resource-attributes=namespace=gpu,apiGroup=apps,apiversion=v1,resource=services,subresource=proxy,name=dcgm-exporter")...)
	if err != nil {
		t.Fatal(err)
	}
	if *a.Authorization.ResourceAttributes != *b.Authorization.ResourceAttributes {
		t.Fatalf("file %+v != flag %+v", *a.Authorization.ResourceAttributes, *b.Authorization.ResourceAttributes)
	}
}

func TestConfigFileKubeRBACProxyExample(t *testing.T) {
	// The shape of kube-rbac-proxy's own examples must keep parsing.
	cf, err := ParseConfigFile("example", []byte(`
authorization:
  rewrites:
    byQueryParameter:
      name: "namespace"
    byHttpHeader:
      name: "x-namespace"
  resourceAttributes:
    apiVersion: v1
    resource: namespace
    subresource: metrics
    namespace: "{{ .Value }}"
  static:
    - user:
        name: system:serviceaccount:default:default
        groups: ["system:serviceaccounts"]
      verb: get
      resourceRequest: true
      resource: namespace
      subresource: metrics
      namespace: default
`))
	if err != nil {
		t.Fatal(err)
	}
	a := cf.Authorization
	if a.Rewrites.ByQueryParameter.Name != "namespace" || a.Rewrites.ByHTTPHeader.Name != "x-namespace" {
		t.Errorf("rewrites: %+v", a.Rewrites)
	}
	if a.ResourceAttributes.Namespace != "{{ .Value }}" || a.ResourceAttributes.Subresource != "metrics" {
		t.Errorf("resourceAttributes: %+v", a.ResourceAttributes)
	}
	if len(a.Static) != 1 || a.Static[0].User.Name != "system:serviceaccount:default:default" || a.Static[0].User.Groups[0] != "system:serviceaccounts" || !a.Static[0].ResourceRequest {
		t.Errorf("static: %+v", a.Static)
	}
}

func TestWarnings(t *testing.T) {
	f := NewFlags("rbac-proxy")
	if err := f.Parse(append(minimalArgs, "--logtostderr", "--tls-reload-interval=5s", "--insecure-listen-address=127.0.0.1:1", "--oidc-clientID=app")); err != nil {
		t.Fatal(err)
	}
	w := strings.Join(f.Warnings(), "\n")
	for _, want := range []string{"--logtostderr", "--tls-reload-interval", "--insecure-listen-address", "self-signed", "--oidc-clientID has no effect without --oidc-issuer"} {
		if !strings.Contains(w, want) {
			t.Errorf("warnings %q lack %q", w, want)
		}
	}
}

// TestValidationReportsEveryField: one run names every bad field, each a field.Error on its flag.
func TestValidationReportsEveryField(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want []string // the field paths, in order
	}{
		{"parse", []string{"--tls-min-version=TLS1.2", "--tls-cipher-suites=TLS_NOPE", "--probe-passthrough=PUT:1:/"},
			[]string{"--tls-min-version", "--tls-cipher-suites", "--probe-passthrough"}},
		{"validate", []string{"--secure-listen-address=8443", "--upstream=ftp://x/", "--max-connections=0", "--allow-paths=metrics", "--kube-api-timeout=0s"},
			[]string{"--secure-listen-address", "--max-connections", "--upstream", "--allow-paths", "--kube-api-timeout"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig(t, tc.args...)
			var agg utilerrors.Aggregate
			if !errors.As(err, &agg) {
				t.Fatalf("error %v (%T) is not an aggregate", err, err)
			}
			var got []string
			for _, e := range agg.Errors() {
				var fe *field.Error
				if !errors.As(e, &fe) {
					t.Fatalf("%v (%T) is not a field.Error", e, e)
				}
				got = append(got, fe.Field)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("fields %q, want %q (%v)", got, tc.want, err)
			}
		})
	}
}
