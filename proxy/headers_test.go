package proxy

import (
	"net/http"
	"reflect"
	"testing"

	"k8s.io/apiserver/pkg/authentication/user"
)

func TestHeaderPolicy(t *testing.T) {
	incoming := func() http.Header {
		return http.Header{
			"Authorization":          {"Bearer secret"},
			"X-Remote-User":          {"admin"},
			"X-Remote-Groups":        {"system:masters"},
			"X-Remote-Extra-Scopes":  {"all"},
			"X-Custom-User":          {"admin"},
			"X-Custom-Groups":        {"system:masters"},
			"Accept":                 {"text/plain"},
			"X-Remote-Extrastuff":    {"kept: not the X-Remote-Extra- family"},
			"Proxy-Authorization":    {"Basic x"},
			"X-Forwarded-Client-Crt": {"kept"},
		}
	}
	u := &user.DefaultInfo{Name: "alice", Groups: []string{"g1", "g2"}}
	tests := []struct {
		name string
		cfg  IdentityHeaders
		want http.Header
	}{
		{
			name: "disabled: identity headers removed, none set",
			cfg:  IdentityHeaders{UserField: DefaultUserField, GroupsField: DefaultGroupsField, GroupSeparator: "|"},
			want: http.Header{"Accept": {"text/plain"}, "X-Custom-User": {"admin"}, "X-Custom-Groups": {"system:masters"}, "X-Remote-Extrastuff": {"kept: not the X-Remote-Extra- family"}, "X-Forwarded-Client-Crt": {"kept"}},
		},
		{
			name: "enabled: set from the authenticated user",
			cfg:  IdentityHeaders{Enabled: true, UserField: DefaultUserField, GroupsField: DefaultGroupsField, GroupSeparator: "|"},
			want: http.Header{"Accept": {"text/plain"}, "X-Custom-User": {"admin"}, "X-Custom-Groups": {"system:masters"}, "X-Remote-Extrastuff": {"kept: not the X-Remote-Extra- family"}, "X-Forwarded-Client-Crt": {"kept"},
				"X-Remote-User": {"alice"}, "X-Remote-Groups": {"g1|g2"}},
		},
		{
			name: "custom names: both custom and default names removed",
			cfg:  IdentityHeaders{Enabled: true, UserField: "x-custom-user", GroupsField: "x-custom-groups", GroupSeparator: ","},
			want: http.Header{"Accept": {"text/plain"}, "X-Remote-Extrastuff": {"kept: not the X-Remote-Extra- family"}, "X-Forwarded-Client-Crt": {"kept"},
				"X-Custom-User": {"alice"}, "X-Custom-Groups": {"g1,g2"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newHeaderPolicy(tc.cfg)
			h := incoming()
			p.sanitize(h)
			p.setIdentity(h, u)
			if !reflect.DeepEqual(h, tc.want) {
				t.Fatalf("got  %v\nwant %v", h, tc.want)
			}
		})
	}
}
