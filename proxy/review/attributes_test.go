package review

import (
	"net/http/httptest"
	"reflect"
	"testing"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
)

func TestAttributes(t *testing.T) {
	u := &user.DefaultInfo{Name: "alice"}
	ra := &config.ResourceAttributes{Namespace: "{{ .Value }}", APIVersion: "v1", Resource: "services", Subresource: "proxy", Name: "exporter-{{ .Value }}"}
	tests := []struct {
		name    string
		authz   config.AuthorizationConfig
		method  string
		target  string
		headers map[string][]string
		want    []authorizer.AttributesRecord
	}{
		{
			name: "non-resource uses the cleaned path and the verb", method: "GET", target: "/metrics",
			want: []authorizer.AttributesRecord{{User: u, Verb: "get", Path: "/clean"}},
		},
		{
			name: "verbs follow kube-rbac-proxy", method: "POST", target: "/x",
			want: []authorizer.AttributesRecord{{User: u, Verb: "create", Path: "/clean"}},
		},
		{
			name: "HEAD is *", method: "HEAD", target: "/x",
			want: []authorizer.AttributesRecord{{User: u, Verb: "*", Path: "/clean"}},
		},
		{
			name: "resource attributes without rewrites are literal", method: "GET", target: "/metrics?namespace=kube-system",
			authz: config.AuthorizationConfig{ResourceAttributes: ra},
			want:  []authorizer.AttributesRecord{{User: u, Verb: "get", Namespace: "{{ .Value }}", APIVersion: "v1", Resource: "services", Subresource: "proxy", Name: "exporter-{{ .Value }}", ResourceRequest: true}},
		},
		{
			name: "rewrite by query parameter", method: "GET", target: "/metrics?namespace=gpu",
			authz: config.AuthorizationConfig{ResourceAttributes: ra, Rewrites: &config.Rewrites{ByQueryParameter: &config.RewriteSource{Name: "namespace"}}},
			want:  []authorizer.AttributesRecord{{User: u, Verb: "get", Namespace: "gpu", APIVersion: "v1", Resource: "services", Subresource: "proxy", Name: "exporter-gpu", ResourceRequest: true}},
		},
		{
			name: "every value is checked", method: "GET", target: "/metrics?namespace=a&namespace=b",
			headers: map[string][]string{"X-Namespace": {"c"}},
			authz:   config.AuthorizationConfig{ResourceAttributes: ra, Rewrites: &config.Rewrites{ByQueryParameter: &config.RewriteSource{Name: "namespace"}, ByHTTPHeader: &config.RewriteSource{Name: "x-namespace"}}},
			want: []authorizer.AttributesRecord{
				{User: u, Verb: "get", Namespace: "a", APIVersion: "v1", Resource: "services", Subresource: "proxy", Name: "exporter-a", ResourceRequest: true},
				{User: u, Verb: "get", Namespace: "b", APIVersion: "v1", Resource: "services", Subresource: "proxy", Name: "exporter-b", ResourceRequest: true},
				{User: u, Verb: "get", Namespace: "c", APIVersion: "v1", Resource: "services", Subresource: "proxy", Name: "exporter-c", ResourceRequest: true},
			},
		},
		{
			name: "rewrite by header", method: "GET", target: "/metrics",
			headers: map[string][]string{"X-Namespace": {"gpu"}},
			authz:   config.AuthorizationConfig{ResourceAttributes: ra, Rewrites: &config.Rewrites{ByHTTPHeader: &config.RewriteSource{Name: "x-namespace"}}},
			want:    []authorizer.AttributesRecord{{User: u, Verb: "get", Namespace: "gpu", APIVersion: "v1", Resource: "services", Subresource: "proxy", Name: "exporter-gpu", ResourceRequest: true}},
		},
		{
			name: "no rewrite value: nothing to authorize", method: "GET", target: "/metrics",
			authz: config.AuthorizationConfig{ResourceAttributes: ra, Rewrites: &config.Rewrites{ByQueryParameter: &config.RewriteSource{Name: "namespace"}}},
			want:  []authorizer.AttributesRecord{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := NewAttributes(tc.authz)
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest(tc.method, tc.target, nil)
			for k, v := range tc.headers {
				r.Header[k] = v
			}
			got := b.Build(u, r, "/clean")
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestTemplateValidation(t *testing.T) {
	for _, bad := range []string{"{{ .Value", "{{ .Other }}", "{{ template \"x\" }}"} {
		if _, err := compileAttributeTemplates(config.ResourceAttributes{Name: bad}); err == nil {
			t.Errorf("template %q accepted", bad)
		}
	}
	if _, err := compileAttributeTemplates(config.ResourceAttributes{Name: "{{ .Value }}-x", Namespace: "plain"}); err != nil {
		t.Errorf("good template refused: %v", err)
	}
}

func TestCheckRewriteSources(t *testing.T) {
	ra := &config.ResourceAttributes{Namespace: "{{ .Value }}"}
	byQuery := config.AuthorizationConfig{ResourceAttributes: ra, Rewrites: &config.Rewrites{ByQueryParameter: &config.RewriteSource{Name: "namespace"}}}
	byHeader := config.AuthorizationConfig{ResourceAttributes: ra, Rewrites: &config.Rewrites{ByHTTPHeader: &config.RewriteSource{Name: "x-namespace"}}}
	noRewrite := config.AuthorizationConfig{ResourceAttributes: ra}
	tests := []struct {
		name      string
		authz     config.AuthorizationConfig
		target    string
		headers   map[string][]string
		ambiguous bool
	}{
		{"exact key", byQuery, "/m?namespace=a", nil, false},
		{"exact key repeated: each reviewed", byQuery, "/m?namespace=a&namespace=b", nil, false},
		{"other parameters", byQuery, "/m?namespace=a&names=b&space=c&name=d", nil, false},
		{"case", byQuery, "/m?namespace=a&NameSpace=b", nil, true},
		{"Kelvin sign", config.AuthorizationConfig{ResourceAttributes: ra, Rewrites: &config.Rewrites{ByQueryParameter: &config.RewriteSource{Name: "kind"}}}, "/m?kind=a&%E2%84%AAind=b", nil, true},
		{"brackets", byQuery, "/m?namespace[]=b", nil, true},
		{"a bracketed key", byQuery, "/m?namespace[x]=b", nil, true},
		{"separators", byQuery, "/m?name-space=b", nil, true},
		{"a space", byQuery, "/m?name+space=b", nil, true},
		{"a NUL", byQuery, "/m?namespace%00=b", nil, true},
		{"a semicolon", byQuery, "/m?namespace=a;namespace=b", nil, true},
		{"a bad escape", byQuery, "/m?namespace=a&x=%g0", nil, true},
		{"a urlencoded body", byQuery, "/m?namespace=a", map[string][]string{"Content-Type": {"application/x-www-form-urlencoded; charset=utf-8"}}, true},
		{"a multipart body", byQuery, "/m?namespace=a", map[string][]string{"Content-Type": {"multipart/form-data; boundary=b"}}, true},
		{"a malformed form type", byQuery, "/m?namespace=a", map[string][]string{"Content-Type": {" Application/X-WWW-Form-Urlencoded;;"}}, true},
		{"a JSON body", byQuery, "/m?namespace=a", map[string][]string{"Content-Type": {"application/json"}}, false},
		{"header exact", byHeader, "/m", map[string][]string{"X-Namespace": {"a", "b"}}, false},
		{"header underscores", byHeader, "/m", map[string][]string{"X-Namespace": {"a"}, "X_namespace": {"b"}}, true},
		{"header without separator", byHeader, "/m", map[string][]string{"Xnamespace": {"b"}}, true},
		{"header: a form body is no header rewrite's concern", byHeader, "/m", map[string][]string{"Content-Type": {"multipart/form-data"}}, false},
		{"no rewrites: nothing to check", noRewrite, "/m?namespace=a;b", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := NewAttributes(tc.authz)
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest("GET", tc.target, nil)
			for k, v := range tc.headers {
				r.Header[k] = v
			}
			if err := b.CheckRewriteSources(r); (err != nil) != tc.ambiguous {
				t.Fatalf("got %v, want ambiguous=%v", err, tc.ambiguous)
			}
		})
	}
}
