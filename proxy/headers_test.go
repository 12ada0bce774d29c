package proxy

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"reflect"
	"testing"

	"k8s.io/apiserver/pkg/authentication/user"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
)

// spoofedHeaders are client-sent headers that name an identity, a method or
// a URL, each of which must never reach the upstream; with the configured
// names X-Auth-User / X-Auth-Groups. Keys are as net/http's server keeps
// them (canonical where it canonicalizes).
var spoofedHeaders = []string{
	"Authorization", "Proxy-Authorization", "Proxy_authorization",
	"X-Remote-User", "X-Remote-Groups", "X-Remote-Group", "X-Remote-Uid", "X-Remote-Extra-Scopes", "X-Remote-Extrastuff", "X-Remote-Addr",
	"X_remote_user", "X_remote_groups", "X_Remote_Uid", "X-REMOTE-USER", "x-remote-user", "X-Remote_User",
	"X-Auth-User", "X-Auth-Groups", "X_auth_user", "X_AUTH_GROUPS",
	"Impersonate-User", "Impersonate-Group", "Impersonate-Uid", "Impersonate-Extra-Scopes", "Impersonate_user",
	"X-Http-Method-Override", "X-Method-Override", "X-Http-Method", "X_http_method_override",
	"X-Original-Url", "X-Rewrite-Url", "X-Original-Uri", "X-Original-Method", "X_original_url", "X_rewrite_url",
	"X-Forwarded-Prefix", "X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups", "X-Forwarded-Client-Cert", "X-Forwarded-Uri", "X-Forwarded-Method", "X_forwarded_for", "X-Forwarded-Port",
	"Forwarded", "X-Auth-Request-User", "X-Auth-Request-Email", "Remote-User", "Remote_user", "Remote-Groups",
	"X-Real-Ip", "X-Client-Ip", "True-Client-Ip",
	// Other separators, which some upstream adapters (CGI, WSGI) also turn into "_".
	"X.Remote.User", "X~remote~user", "Impersonate.User",
}

// keptHeaders look close to those above but name nothing of the kind.
var keptHeaders = []string{
	"Accept", "User-Agent", "X-Custom-User", "X-Remote", "X-Remoteuser", "X-Auth", "Remote-Addr",
	"X-Prometheus-Scrape-Timeout-Seconds", "Impersonate", "X-Original", "X-Forwarded",
}

func TestHeaderPolicySanitize(t *testing.T) {
	p := newHeaderPolicy(config.IdentityHeaders{Enabled: true, UserField: "x-auth-user", GroupsField: "x-auth-groups", GroupSeparator: "|"})
	for _, k := range spoofedHeaders {
		t.Run("stripped/"+k, func(t *testing.T) {
			h := http.Header{k: {"admin"}, "Accept": {"*/*"}}
			p.sanitize(h)
			if _, ok := h[k]; ok || len(h) != 1 {
				t.Fatalf("%s survived: %v", k, h)
			}
		})
	}
	for _, k := range keptHeaders {
		t.Run("kept/"+k, func(t *testing.T) {
			h := http.Header{k: {"v"}}
			p.sanitize(h)
			if _, ok := h[k]; !ok {
				t.Fatalf("%s was removed", k)
			}
		})
	}
}

func TestHeaderPolicyIdentity(t *testing.T) {
	u := &user.DefaultInfo{Name: "alice", Groups: []string{"g1", "g2"}}
	tests := []struct {
		name string
		cfg  config.IdentityHeaders
		want http.Header
	}{
		{
			name: "disabled: none set",
			cfg:  config.IdentityHeaders{UserField: config.DefaultUserField, GroupsField: config.DefaultGroupsField, GroupSeparator: "|"},
			want: http.Header{"Accept": {"text/plain"}, "X-Custom-User": {"admin"}},
		},
		{
			name: "enabled: set from the authenticated user",
			cfg:  config.IdentityHeaders{Enabled: true, UserField: config.DefaultUserField, GroupsField: config.DefaultGroupsField, GroupSeparator: "|"},
			want: http.Header{"Accept": {"text/plain"}, "X-Custom-User": {"admin"}, "X-Remote-User": {"alice"}, "X-Remote-Groups": {"g1|g2"}},
		},
		{
			name: "custom names",
			cfg:  config.IdentityHeaders{Enabled: true, UserField: "x-custom-user", GroupsField: "x-custom-groups", GroupSeparator: ","},
			want: http.Header{"Accept": {"text/plain"}, "X-Custom-User": {"alice"}, "X-Custom-Groups": {"g1,g2"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newHeaderPolicy(tc.cfg)
			in := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			in.Header = http.Header{"Accept": {"text/plain"}, "X-Remote-User": {"admin"}, "X-Custom-User": {"admin"}}
			p.sanitize(in.Header)
			in = p.withIdentity(in, u)
			if tc.cfg.Enabled && in.Header.Get(tc.cfg.UserField) != "" {
				t.Fatalf("identity set on the incoming request, where Connection can remove it: %v", in.Header)
			}
			// As the ReverseProxy hands it to Rewrite: a copy of the
			// incoming headers with the hop-by-hop ones removed.
			pr := &httputil.ProxyRequest{In: in, Out: in.Clone(in.Context())}
			setUpstreamIdentity(pr)
			if !reflect.DeepEqual(pr.Out.Header, tc.want) {
				t.Fatalf("got  %v\nwant %v", pr.Out.Header, tc.want)
			}
		})
	}
}

// The sanitizer runs on every request's headers: it must not allocate.
func TestHeaderPolicySanitizeAllocs(t *testing.T) {
	p := newHeaderPolicy(config.IdentityHeaders{UserField: config.DefaultUserField, GroupsField: config.DefaultGroupsField})
	h := http.Header{"Accept": {"*/*"}, "User-Agent": {"Prometheus/3.0"}, "Accept-Encoding": {"gzip"}, "X-Prometheus-Scrape-Timeout-Seconds": {"10"}}
	if n := testing.AllocsPerRun(100, func() { p.sanitize(h) }); n != 0 {
		t.Fatalf("sanitize allocates %v times", n)
	}
}

func BenchmarkHeaderPolicySanitize(b *testing.B) {
	p := newHeaderPolicy(config.IdentityHeaders{UserField: config.DefaultUserField, GroupsField: config.DefaultGroupsField})
	h := http.Header{"Accept": {"*/*"}, "User-Agent": {"Prometheus/3.0"}, "Accept-Encoding": {"gzip"}, "X-Prometheus-Scrape-Timeout-Seconds": {"10"}}
	for b.Loop() {
		p.sanitize(h)
	}
}

// TestHeaderPolicyUnsayable: a group holding the groups header's separator would reach the
// upstream as two groups ("dev|admins" as dev and admins); the handler refuses such an identity.
func TestHeaderPolicyUnsayable(t *testing.T) {
	on := config.IdentityHeaders{Enabled: true, UserField: config.DefaultUserField, GroupsField: config.DefaultGroupsField, GroupSeparator: "|"}
	off := on
	off.Enabled = false
	for _, tc := range []struct {
		name   string
		cfg    config.IdentityHeaders
		groups []string
		want   string
	}{
		{"plain groups", on, []string{"dev", "system:authenticated"}, ""},
		{"a group with the separator", on, []string{"dev", "dev|admins"}, "dev|admins"},
		{"headers off: nothing is told", off, []string{"dev|admins"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := newHeaderPolicy(tc.cfg).unsayable(&user.DefaultInfo{Name: "alice", Groups: tc.groups})
			if got != tc.want {
				t.Fatalf("unsayable = %q, want %q", got, tc.want)
			}
		})
	}
}
