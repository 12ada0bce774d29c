package proxy

import (
	"net/url"
	"testing"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
)

func TestCleanRequestPath(t *testing.T) {
	tests := []struct {
		raw    string // as sent on the wire
		want   string
		reject bool
	}{
		{"/metrics", "/metrics", false},
		{"/", "/", false},
		{"", "/", false},
		{"/metrics/", "/metrics/", false},
		{"/metrics/../debug", "/debug", false},
		{"/metrics/%2e%2e/debug", "/debug", false},
		{"/metrics/%2E%2E/debug", "/debug", false},
		{"/metrics/.%2e/debug", "/debug", false},
		{"//debug", "/debug", false},
		{"/./debug", "/debug", false},
		{"/metrics/./", "/metrics/", false},
		{"/../../etc/passwd", "/etc/passwd", false},
		{"/metrics%2f..%2fdebug", "/debug", false},
		{"/a//b///c", "/a/b/c", false},
		{"/metrics\\..\\debug", "", true},
		{"/metrics%5c..%5cdebug", "", true},
		{"/metrics%00", "", true},
		{"/metrics%0a", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.raw, func(t *testing.T) {
			u, err := url.ParseRequestURI("http://x" + tc.raw)
			if tc.raw == "" {
				u, err = url.Parse("http://x")
			}
			if err != nil {
				t.Fatal(err)
			}
			got, ok := cleanRequestPath(u.Path)
			if ok == tc.reject {
				t.Fatalf("ok=%v, want reject=%v", ok, tc.reject)
			}
			if got != tc.want {
				t.Fatalf("cleaned %q (decoded %q) = %q, want %q", tc.raw, u.Path, got, tc.want)
			}
		})
	}
}

func TestPathPolicy(t *testing.T) {
	allow := config.PathPolicy{Allow: []string{"/metrics", "/api/v1/*"}}
	ignore := config.PathPolicy{Ignore: []string{"/healthz", "/static/*"}}
	tests := []struct {
		policy config.PathPolicy
		path   string
		want   pathDecision
	}{
		{config.PathPolicy{}, "/anything", pathChecked},
		{allow, "/metrics", pathChecked},
		{allow, "/metrics/", pathNotFound},
		{allow, "/api/v1/x", pathChecked},
		{allow, "/api/v1/x/y", pathNotFound},
		{allow, "/debug", pathNotFound},
		{ignore, "/healthz", pathIgnored},
		{ignore, "/static/app.js", pathIgnored},
		{ignore, "/metrics", pathChecked},
	}
	for _, tc := range tests {
		if got := decidePath(tc.policy, tc.path); got != tc.want {
			t.Errorf("decidePath(%+v, %q) = %v, want %v", tc.policy, tc.path, got, tc.want)
		}
	}
}

func TestJoinUpstreamPath(t *testing.T) {
	tests := []struct{ base, p, want string }{
		{"", "/metrics", "/metrics"},
		{"/", "/metrics", "/metrics"},
		{"/base", "/metrics", "/base/metrics"},
		{"/base/", "/metrics", "/base/metrics"},
		{"/base/", "/", "/base/"},
	}
	for _, tc := range tests {
		if got := joinUpstreamPath(tc.base, tc.p); got != tc.want {
			t.Errorf("joinUpstreamPath(%q, %q) = %q, want %q", tc.base, tc.p, got, tc.want)
		}
	}
}
