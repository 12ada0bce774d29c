package proxy

import (
	"net/http"
	"net/textproto"
	"strings"

	"k8s.io/apiserver/pkg/authentication/user"
)

// headerPolicy removes the caller's credentials and any identity headers it
// sent, and sets the proxy's own identity headers when enabled.
type headerPolicy struct {
	enabled   bool
	userKey   string // canonical
	groupsKey string // canonical
	separator string
	// strip are the canonical header names always removed from the request.
	strip []string
}

func newHeaderPolicy(h IdentityHeaders) headerPolicy {
	p := headerPolicy{
		enabled:   h.Enabled,
		userKey:   textproto.CanonicalMIMEHeaderKey(h.UserField),
		groupsKey: textproto.CanonicalMIMEHeaderKey(h.GroupsField),
		separator: h.GroupSeparator,
	}
	seen := map[string]bool{}
	for _, name := range []string{
		"Authorization", "Proxy-Authorization",
		h.UserField, h.GroupsField, DefaultUserField, DefaultGroupsField,
	} {
		k := textproto.CanonicalMIMEHeaderKey(name)
		if !seen[k] {
			seen[k] = true
			p.strip = append(p.strip, k)
		}
	}
	return p
}

// sanitize removes credentials and client-sent identity headers, including
// the X-Remote-Extra-* family the API server uses for extra attributes.
func (p headerPolicy) sanitize(h http.Header) {
	for _, k := range p.strip {
		delete(h, k)
	}
	for k := range h {
		if len(k) > len("X-Remote-Extra-") && strings.EqualFold(k[:len("X-Remote-Extra-")], "X-Remote-Extra-") {
			delete(h, k)
		}
	}
}

// setIdentity tells the upstream who the caller is, when enabled.
func (p headerPolicy) setIdentity(h http.Header, u user.Info) {
	if !p.enabled || u == nil {
		return
	}
	h[p.userKey] = []string{u.GetName()}
	h[p.groupsKey] = []string{strings.Join(u.GetGroups(), p.separator)}
}
