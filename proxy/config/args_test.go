package config

import (
	"crypto/tls"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// readBack parses a command line as the proxy does, without validating.
func readBack(t testing.TB, args []string) (*Config, error) {
	t.Helper()
	f := NewFlags("rbac-proxy")
	if err := f.Parse(args); err != nil {
		return nil, err
	}
	return f.build()
}

// argsCases set each flag that reaches the Config to something else than its default: the
// command line, what Args writes for it, and the Config field it sets.
var argsCases = []struct {
	in    []string
	want  []string // nil: the same as in
	field string
}{
	{in: []string{"--secure-listen-address=0.0.0.0:8443"}, field: "Listen.SecureAddress"},
	{in: []string{"--insecure-listen-address=127.0.0.1:8080"}, field: "Listen.InsecureAddress"},
	{in: []string{"--proxy-endpoints-port=8444"}, field: "Listen.ProxyEndpointsPort"},
	{in: []string{"--probe-passthrough=GET:9400:/health", "--probe-passthrough=https:HEAD:9401:/ready?full=1"}, field: "Listen.ProbePassthrough"},
	{in: []string{"--probe-passthrough=http:GET:9400:/a,b"}, want: []string{"--probe-passthrough=GET:9400:/a,b"}, field: "Listen.ProbePassthrough"},
	{in: []string{"--upstream=http://127.0.0.1:8080/"}, field: "Upstream.URL"},
	{in: []string{"--upstream=unix:///run/app.sock"}, field: "Upstream.URL"},
	{in: []string{"--upstream-force-h2c"}, field: "Upstream.ForceH2C"},
	{in: []string{"--upstream-ca-file=/ca.crt"}, field: "Upstream.CAFile"},
	{in: []string{"--upstream-client-cert-file=/c.crt"}, field: "Upstream.ClientCertFile"},
	{in: []string{"--upstream-client-key-file=/c.key"}, field: "Upstream.ClientKeyFile"},
	{in: []string{"--upstream-insecure-skip-verify=true"}, want: []string{"--upstream-insecure-skip-verify"}, field: "Upstream.InsecureSkipVerify"},
	{in: []string{"--allowed-upgrades=websocket,spdy/3.1"}, field: "Upstream.AllowedUpgrades"},
	{in: []string{"--upstream-timeout=1m30s"}, field: "Upstream.Timeout"},
	{in: []string{"--upstream-timeout=0"}, want: []string{"--upstream-timeout=0s"}, field: "Upstream.Timeout"},
	{in: []string{"--tls-cert-file=/tls.crt"}, field: "TLS.CertFile"},
	{in: []string{"--tls-private-key-file=/tls.key"}, field: "TLS.KeyFile"},
	{in: []string{"--client-ca-file=/ca.crt"}, field: "TLS.ClientCAFile"},
	{in: []string{"--tls-min-version=VersionTLS13"}, field: "TLS.MinVersion"},
	{in: []string{"--tls-cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_RSA_WITH_RC4_128_SHA"}, field: "TLS.CipherSuites"},
	// cliflag's older name of the ChaCha20 suite is written as crypto/tls names it.
	{in: []string{"--tls-cipher-suites=TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305"}, want: []string{"--tls-cipher-suites=TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"}, field: "TLS.CipherSuites"},
	{in: []string{"--allow-paths=/metrics,/federate*"}, field: "Paths.Allow"},
	{in: []string{"--ignore-paths=/healthz"}, field: "Paths.Ignore"},
	{in: []string{"--auth-token-audiences=a,b"}, field: "Authentication.Audiences"},
	{in: []string{"--auth-header-fields-enabled"}, field: "Authentication.Header.Enabled"},
	{in: []string{"--auth-header-user-field-name=X-User"}, field: "Authentication.Header.UserField"},
	{in: []string{"--auth-header-groups-field-name=X-Groups"}, field: "Authentication.Header.GroupsField"},
	{in: []string{"--auth-header-groups-field-separator=,"}, field: "Authentication.Header.GroupSeparator"},
	{in: []string{"--auth-header-groups-field-separator="}, field: "Authentication.Header.GroupSeparator"},
	{in: []string{"--service-account-token-verification=local"}, field: "Authentication.ServiceAccounts.Verification"},
	{in: []string{"--service-account-max-token-expiration=1h0m0s"}, field: "Authentication.ServiceAccounts.MaxTokenExpiration"},
	{in: []string{"--service-account-long-lived-tokens=review"}, field: "Authentication.ServiceAccounts.LongLived"},
	{in: []string{"--service-account-legacy-tokens=review"}, field: "Authentication.ServiceAccounts.Legacy"},
	{in: []string{"--oidc-issuer=https://issuer.example.com"}, field: "Authentication.OIDC.IssuerURL"},
	{in: []string{"--oidc-clientID=app"}, field: "Authentication.OIDC.ClientID"},
	{in: []string{"--oidc-ca-file=/oidc-ca.crt"}, field: "Authentication.OIDC.CAFile"},
	{in: []string{"--oidc-username-claim=sub"}, field: "Authentication.OIDC.UsernameClaim"},
	{in: []string{"--oidc-username-prefix=oidc:"}, field: "Authentication.OIDC.UsernamePrefix"},
	{in: []string{"--oidc-groups-claim=roles"}, field: "Authentication.OIDC.GroupsClaim"},
	{in: []string{"--oidc-groups-claim="}, field: "Authentication.OIDC.GroupsClaim"},
	{in: []string{"--oidc-groups-prefix=oidc:"}, field: "Authentication.OIDC.GroupsPrefix"},
	{in: []string{"--oidc-sign-alg=ES256", "--oidc-sign-alg=RS256"}, field: "Authentication.OIDC.SigningAlgs"},
	{in: []string{"--authentication-config=/etc/authn.yaml"}, field: "Authentication.JWTConfigFile"},
	{in: []string{"--authz=static"}, field: "Authorization.Mode"},
	{in: []string{"--allowed-users=system:serviceaccount:monitoring:prometheus,alice"}, field: "Authorization.Allowed.Users"},
	{in: []string{"--allowed-groups=system:monitoring"}, field: "Authorization.Allowed.Groups"},
	// CSV: an item with a comma or a quote is quoted, and reads back as one item.
	{in: []string{`--allowed-groups="a,b","c""d"`}, field: "Authorization.Allowed.Groups"},
	{in: []string{"--resource-attributes=Namespace=gpu,resource=services,subresource=proxy,name=dcgm-exporter,apigroup=apps,apiversion=v1"},
		want: []string{"--resource-attributes=namespace=gpu,apigroup=apps,apiversion=v1,resource=services,subresource=proxy,name=dcgm-exporter"}, field: "Authorization.ResourceAttributes"},
	{in: []string{"--resource-attributes=name="}, want: []string{"--resource-attributes=namespace="}, field: "Authorization.ResourceAttributes"},
	{in: []string{"--resource-attributes=namespace={{ .Value }}"}, field: "Authorization.ResourceAttributes"},
	{in: []string{"--tenancy=namespace"}, field: "Authorization.Tenancy.Mode"},
	{in: []string{"--tenancy-namespace-labels=exported_namespace"}, field: "Authorization.Tenancy.NamespaceLabels"},
	{in: []string{"--tenancy-verb=list"}, field: "Authorization.Tenancy.Verb"},
	{in: []string{"--tenancy-resource=jobs.batch"}, field: "Authorization.Tenancy.APIGroup"},
	{in: []string{"--tenancy-resource=nodes"}, field: "Authorization.Tenancy.Resource"},
	// kubectl's spelling: the group after the first dot.
	{in: []string{"--tenancy-resource=pytorchjobs.kubeflow.org"}, field: "Authorization.Tenancy.APIGroup"},
	{in: []string{"--authentication-token-webhook-cache-ttl=1m0s"}, field: "Cache.TokenSuccessTTL"},
	{in: []string{"--authentication-token-webhook-cache-unauthorized-ttl=0s"}, field: "Cache.TokenFailureTTL"},
	{in: []string{"--authorization-webhook-cache-authorized-ttl=1h0m0s"}, field: "Cache.AuthorizedTTL"},
	{in: []string{"--authorization-webhook-cache-unauthorized-ttl=1ns"}, field: "Cache.UnauthorizedTTL"},
	{in: []string{"--stale-cache-ttl=10m0s"}, field: "Cache.StaleTTL"},
	{in: []string{"--cache-max-entries=10"}, field: "Cache.MaxEntries"},
	{in: []string{"--kubeconfig=/kubeconfig"}, field: "KubeAPI.Kubeconfig"},
	{in: []string{"--kube-api-qps=0.5"}, field: "KubeAPI.QPS"},
	{in: []string{"--kube-api-qps=50"}, want: []string{}, field: ""}, // the default, written as 0
	{in: []string{"--kube-api-burst=7"}, field: "KubeAPI.Burst"},
	{in: []string{"--kube-api-timeout=10s"}, field: "KubeAPI.Timeout"},
	{in: []string{"--http2-disable"}, field: "HTTP2.Disable"},
	{in: []string{"--http2-max-concurrent-streams=7"}, field: "HTTP2.MaxConcurrentStreams"},
	{in: []string{"--http2-max-size=16384"}, field: "HTTP2.MaxSize"},
	{in: []string{"--read-header-timeout=1s"}, field: "Limits.ReadHeaderTimeout"},
	{in: []string{"--idle-timeout=1s"}, field: "Limits.IdleTimeout"},
	{in: []string{"--max-header-bytes=4096"}, field: "Limits.MaxHeaderBytes"},
	{in: []string{"--shutdown-grace-period=0s"}, field: "Limits.ShutdownGracePeriod"},
	{in: []string{"--request-body-timeout=1m0s"}, field: "Limits.RequestBodyTimeout"},
	{in: []string{"--max-connections=10"}, field: "Limits.MaxConnections"},
	{in: []string{"-v=4"}, field: "Log.Verbosity"},
	{in: []string{"--v", "4"}, want: []string{"-v=4"}, field: "Log.Verbosity"},
}

// notInConfig are the flags that reach no Config field: the config file's path (Args refuses
// what only the file carries), flags kept for kube-rbac-proxy that are ignored, and
// the program's own.
var notInConfig = []string{
	"config-file", "tls-reload-interval", "vmodule", "version", "help",
}

func TestArgsDefault(t *testing.T) {
	args, err := Args(Default())
	if err != nil || len(args) != 0 {
		t.Fatalf("Args(Default()) = %q, %v; want nothing", args, err)
	}
}

func TestArgsRoundTrip(t *testing.T) {
	for _, tc := range argsCases {
		t.Run(strings.Join(tc.in, " "), func(t *testing.T) {
			cfg, err := readBack(t, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := Diff(Default(), cfg); got != tc.field {
				t.Fatalf("%q sets %q, want %q", tc.in, got, tc.field)
			}
			args, err := Args(cfg)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.want
			if want == nil {
				want = tc.in
			}
			if !slices.Equal(args, want) {
				t.Fatalf("Args = %q, want %q", args, want)
			}
			back, err := readBack(t, args)
			if err != nil {
				t.Fatal(err)
			}
			if d := Diff(cfg, back); d != "" {
				t.Fatalf("%s differs after the round trip", d)
			}
		})
	}
}

// TestArgsCasesCoverEveryFlagAndField keeps argsCases complete: every flag is set by a case or
// listed in notInConfig, and every Config field but the reload interval is set by a case, so a
// new setting cannot be left out of Args unnoticed.
func TestArgsCasesCoverEveryFlagAndField(t *testing.T) {
	setFlags := map[string]bool{}
	setFields := map[string]bool{}
	for _, tc := range argsCases {
		f := NewFlags("rbac-proxy")
		if err := f.Parse(tc.in); err != nil {
			t.Fatal(err)
		}
		f.fs.Visit(func(fl *pflag.Flag) { setFlags[fl.Name] = true })
		setFields[tc.field] = true
	}
	NewFlags("rbac-proxy").FlagSet().VisitAll(func(fl *pflag.Flag) {
		if !setFlags[fl.Name] && !fl.Hidden && !slices.Contains(notInConfig, fl.Name) {
			t.Errorf("no case of argsCases sets --%s", fl.Name)
		}
	})
	var walk func(typ reflect.Type, path string)
	walk = func(typ reflect.Type, path string) {
		if typ.Kind() == reflect.Pointer && typ.Elem().PkgPath() == typ.PkgPath() {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || typ.PkgPath() != reflect.TypeOf(Config{}).PkgPath() || typ == reflect.TypeOf(ResourceAttributes{}) {
			if !setFields[path] && path != "TLS.ReloadInterval" && path != "Authorization.Static" && path != "Authorization.Rewrites" {
				t.Errorf("no case of argsCases sets %s", path)
			}
			return
		}
		for i := 0; i < typ.NumField(); i++ {
			p := typ.Field(i).Name
			if path != "" {
				p = path + "." + p
			}
			walk(typ.Field(i).Type, p)
		}
	}
	walk(reflect.TypeOf(Config{}), "")
}

func TestArgsRefuses(t *testing.T) {
	upstream, _ := url.Parse("http://127.0.0.1:8080/")
	for _, tc := range []struct {
		field string // the error names it
		edit  func(*Config)
	}{
		{"Authorization.Static", func(c *Config) { c.Authorization.Static = []StaticRule{{Path: "/metrics"}} }},
		{"Authorization.Rewrites", func(c *Config) { c.Authorization.Rewrites = &Rewrites{} }},
		{"TLS.ReloadInterval", func(c *Config) { c.TLS.ReloadInterval = time.Minute }},
		{"TLS.MinVersion", func(c *Config) { c.TLS.MinVersion = 0 }},
		{"TLS.CipherSuites", func(c *Config) { c.TLS.CipherSuites = []uint16{0x1234} }},
		{"KubeAPI.QPS", func(c *Config) { c.KubeAPI.QPS = 0 }},
		{"KubeAPI.Burst", func(c *Config) { c.KubeAPI.Burst = 0 }},
		{"Authorization.ResourceAttributes", func(c *Config) { c.Authorization.ResourceAttributes = &ResourceAttributes{Namespace: "a,b"} }},
		{"Authorization.ResourceAttributes.Name", func(c *Config) { c.Authorization.ResourceAttributes = &ResourceAttributes{Name: " x"} }},
		{"Authorization.Allowed.Users", func(c *Config) { c.Authorization.Allowed.Users = []string{"a\r\nb"} }},
		{"Listen.ProbePassthrough", func(c *Config) {
			c.Listen.ProbePassthrough = []ProbePassthrough{{Method: "GET", Port: 9400, Path: "/x"}} // no scheme
		}},
	} {
		t.Run(tc.field, func(t *testing.T) {
			c := Default()
			c.Upstream.URL = upstream
			tc.edit(c)
			args, err := Args(c)
			if err == nil {
				t.Fatalf("Args = %q, want an error naming %s", args, tc.field)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("error %q does not name %s", err, tc.field)
			}
		})
	}
}

// TestArgsHandBuilt is how the webhook uses Args: a Config from Default, changed by hand,
// rendered, and read back by the proxy's own Flags.Config (validation included).
func TestArgsHandBuilt(t *testing.T) {
	c := Default()
	c.Listen.SecureAddress = "0.0.0.0:8443"
	c.Listen.ProxyEndpointsPort = 8444
	c.Listen.ProbePassthrough = []ProbePassthrough{{Scheme: "http", Method: "GET", Port: 9400, Path: "/health"}}
	c.Upstream.URL, _ = url.Parse("https://127.0.0.1:9443/")
	c.Upstream.InsecureSkipVerify = true
	c.TLS.CertFile, c.TLS.KeyFile = "/etc/rbac-proxy/tls/tls.crt", "/etc/rbac-proxy/tls/tls.key"
	c.TLS.CipherSuites = []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}
	c.Authorization.Mode = AuthzStatic
	c.Authorization.Allowed.Users = []string{"system:serviceaccount:monitoring:prometheus"}
	c.Log.Verbosity = 2
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	args, err := Args(c)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"--secure-listen-address=0.0.0.0:8443", "--proxy-endpoints-port=8444", "--probe-passthrough=GET:9400:/health",
		"--upstream=https://127.0.0.1:9443/", "--upstream-insecure-skip-verify",
		"--tls-cert-file=/etc/rbac-proxy/tls/tls.crt", "--tls-private-key-file=/etc/rbac-proxy/tls/tls.key",
		"--tls-cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
		"--authz=static", "--allowed-users=system:serviceaccount:monitoring:prometheus", "-v=2",
	}
	if !slices.Equal(args, want) {
		t.Fatalf("Args =\n%q\nwant\n%q", args, want)
	}
	f := NewFlags("rbac-proxy")
	if err := f.Parse(args); err != nil {
		t.Fatal(err)
	}
	back, err := f.Config()
	if err != nil {
		t.Fatal(err)
	}
	if d := Diff(c, back); d != "" {
		t.Fatalf("%s differs after the round trip", d)
	}
}

// FuzzArgs: Args renders every valid Config that a command line gives (the config file aside),
// and what it renders reads back to the same Config; for an invalid one it may refuse, but what
// it renders reads back the same too.
func FuzzArgs(f *testing.F) {
	for _, tc := range argsCases {
		f.Add(strings.Join(tc.in, "\n"))
	}
	f.Add("--allowed-users=a,\"b\"\n--allow-paths=/a,/b\n--authz=static\n--kube-api-burst=0\n--upstream=http://x:1/a%2Fb?q=1#f")
	f.Fuzz(func(t *testing.T, cmdline string) {
		args := append([]string{"--secure-listen-address=127.0.0.1:8443", "--upstream=http://127.0.0.1:8080/"}, strings.Split(cmdline, "\n")...)
		for _, a := range args {
			if strings.Contains(a, "config-file") || strings.Contains(a, "config_file") {
				return
			}
		}
		flags := NewFlags("rbac-proxy")
		if flags.Parse(args) != nil {
			return
		}
		cfg, err := flags.build()
		if err != nil {
			return
		}
		valid := cfg.Validate() == nil
		out, err := Args(cfg)
		if err != nil {
			if valid {
				t.Fatalf("%q: Args: %v", args, err)
			}
			return
		}
		back, err := readBack(t, out)
		if err != nil {
			t.Fatalf("%q: Args gives %q, which does not read back: %v", args, out, err)
		}
		if d := Diff(cfg, back); d != "" {
			t.Fatalf("%q: Args gives %q; %s differs", args, out, d)
		}
		if (back.Validate() == nil) != valid {
			t.Fatalf("%q: Args gives %q, which validates otherwise", args, out)
		}
		again, err := Args(back)
		if err != nil || !slices.Equal(again, out) {
			t.Fatalf("%q: Args is not stable: %q, then %q (%v)", args, out, again, err)
		}
	})
}
