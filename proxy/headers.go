package proxy

import (
	"context"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"strings"

	"k8s.io/apiserver/pkg/authentication/user"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
)

// headerPolicy removes the caller's credentials and any identity headers it
// sent, and sets the proxy's own identity headers when enabled.
type headerPolicy struct {
	enabled   bool
	userKey   string // canonical
	groupsKey string // canonical
	separator string
	// rules are config.StrippedRequestHeaders and the configured names.
	rules []config.HeaderRule
}

func newHeaderPolicy(h config.IdentityHeaders) headerPolicy {
	p := headerPolicy{
		enabled:   h.Enabled,
		userKey:   textproto.CanonicalMIMEHeaderKey(h.UserField),
		groupsKey: textproto.CanonicalMIMEHeaderKey(h.GroupsField),
		separator: h.GroupSeparator,
		rules:     append([]config.HeaderRule(nil), config.StrippedRequestHeaders...),
	}
	// Configured names outside the families above (say X-Auth-User).
	for _, name := range []string{h.UserField, h.GroupsField} {
		if name != "" && !config.HeaderStripped(config.StrippedRequestHeaders, name) {
			p.rules = append(p.rules, config.HeaderRule{Name: config.HeaderSpelling(name)})
		}
	}
	return p
}

// sanitize removes credentials and client-sent identity headers: every
// header config.StrippedRequestHeaders or the configured names match.
func (p headerPolicy) sanitize(h http.Header) {
	for k := range h {
		if config.HeaderStripped(p.rules, k) {
			delete(h, k)
		}
	}
}

// unsayable is the first group of u that the groups header cannot carry
// (it holds the separator, so the upstream would read it as two groups), or
// "" when every group can be told; always "" when the headers are off.
func (p headerPolicy) unsayable(u user.Info) string {
	if !p.enabled || p.separator == "" {
		return ""
	}
	for _, g := range u.GetGroups() {
		if strings.Contains(g, p.separator) {
			return g
		}
	}
	return ""
}

// upstreamIdentity is what the upstream request is told about the caller.
type upstreamIdentity struct {
	userKey, user     string
	groupsKey, groups string
}

type upstreamIdentityKey struct{}

// withIdentity returns r carrying the caller's identity for the upstream
// request, when identity headers are enabled. The headers are not set on r:
// net/http's ReverseProxy removes whatever the client's Connection header
// names from the outgoing request, so a client sending
// "Connection: X-Remote-User" would take the proxy's own header away.
// setUpstreamIdentity sets them after that, in the ReverseProxy's Rewrite.
func (p headerPolicy) withIdentity(r *http.Request, u user.Info) *http.Request {
	if !p.enabled || u == nil {
		return r
	}
	id := &upstreamIdentity{
		userKey: p.userKey, user: u.GetName(),
		groupsKey: p.groupsKey, groups: strings.Join(u.GetGroups(), p.separator),
	}
	return r.WithContext(context.WithValue(r.Context(), upstreamIdentityKey{}, id))
}

// setUpstreamIdentity sets the identity headers withIdentity recorded on the
// outgoing request. The ReverseProxy calls Rewrite after it has removed the
// hop-by-hop headers and those the client's Connection header names, and
// the transports below (http.Transport over HTTP/1 or HTTP/2)
// remove nothing of what is left, so these are what the upstream sees: set
// once each, replacing any value.
func setUpstreamIdentity(pr *httputil.ProxyRequest) {
	id, ok := pr.In.Context().Value(upstreamIdentityKey{}).(*upstreamIdentity)
	if !ok {
		return
	}
	pr.Out.Header[id.userKey] = []string{id.user}
	pr.Out.Header[id.groupsKey] = []string{id.groups}
}
