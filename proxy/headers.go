package proxy

import (
	"context"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"strings"

	"k8s.io/apiserver/pkg/authentication/user"
)

// headerRule names request headers no client may send to the upstream.
type headerRule struct {
	name   string // lower case, "-" between words
	prefix bool   // every header whose name starts with name
}

// strippedRequestHeaders are removed from every request before anything is
// forwarded, on every path (ignored ones too), whatever the upstream.
//
// They are matched without regard to case and with "_" the same as "-":
// CGI, PHP, Rack, WSGI (Django, Flask) and nginx with underscores_in_headers
// all read X_Remote_User and X-Remote-User as the same HTTP_X_REMOTE_USER, so
// an upstream may believe a spelling net/http thinks is another header.
//
// This is the one list; the configured --auth-header-*-field-name headers are
// added to it (newHeaderPolicy), and h2c's HTTP2-Settings is refused earlier
// (refuseUpgrade).
var strippedRequestHeaders = []headerRule{
	// The caller's credentials: the upstream, or whatever it logs to, must
	// not be able to replay them.
	{"authorization", false},
	{"proxy-authorization", false},
	// Kubernetes' front-proxy identity (X-Remote-User, -Group, -Uid,
	// -Extra-*) and kube-rbac-proxy's defaults (X-Remote-User, -Groups): an
	// upstream behind such a proxy takes them as the caller's identity, and
	// the proxy's own come from --auth-header-fields-enabled only. The whole
	// family goes, so that the next spelling (X-Remote-Uid, X-Remote-Addr for
	// an address allow-list) does not need a new entry.
	{"x-remote-", true},
	// Kubernetes impersonation (Impersonate-User, -Group, -Uid, -Extra-*): an
	// upstream that calls the API server with its own credentials and passes
	// headers on would act as whoever the caller names.
	{"impersonate-", true},
	// What a proxy in front says it saw: oauth2-proxy's X-Forwarded-User,
	// -Email, -Groups, -Preferred-Username and -Access-Token, Envoy's
	// X-Forwarded-Client-Cert, Traefik's X-Forwarded-Method and -Uri, and
	// X-Forwarded-Prefix (Spring, ASP.NET and others build links and
	// redirects from it; rbac-proxy forwards the cleaned path and strips no
	// prefix, so there is none to report). rbac-proxy is the front: it sets
	// X-Forwarded-For, -Host and -Proto itself (after this) and nothing else.
	{"x-forwarded-", true},
	// RFC 7239's form of the above; net/http's ReverseProxy drops it as well.
	{"forwarded", false},
	// oauth2-proxy's and nginx auth_request's identity headers
	// (X-Auth-Request-User, -Email, -Groups, -Preferred-Username,
	// -Access-Token).
	{"x-auth-request-", true},
	// REMOTE_USER as a header (Authelia, Apache mod_auth setups): Remote-User,
	// -Groups, -Email, -Name.
	{"remote-user", false},
	{"remote-groups", false},
	{"remote-email", false},
	{"remote-name", false},
	// The client's address as another proxy would state it; upstreams use
	// them for address allow-lists and audit logs. The proxy's own is in
	// X-Forwarded-For.
	{"x-real-ip", false},
	{"x-client-ip", false},
	{"true-client-ip", false},
	// Method overrides (Rails, Laravel, Express' method-override, ASP.NET,
	// Google APIs): an upstream honouring one runs an authorized GET (verb
	// get) as a DELETE.
	{"x-http-method-override", false},
	{"x-method-override", false},
	{"x-http-method", false},
	// URL overrides (IIS URL Rewrite, Symfony, Laminas): an upstream routing
	// by one serves a path that neither --allow-paths nor the review saw.
	{"x-original-url", false},
	{"x-rewrite-url", false},
	// The original request as a proxy in front states it: nginx
	// auth_request's X-Original-URI and X-Original-Method, ingress-nginx's
	// X-Original-Forwarded-For; an override of the path, the method or the
	// address under another name.
	{"x-original-", true},
}

// headerPolicy removes the caller's credentials and any identity headers it
// sent, and sets the proxy's own identity headers when enabled.
type headerPolicy struct {
	enabled   bool
	userKey   string // canonical
	groupsKey string // canonical
	separator string
	// rules are strippedRequestHeaders and the configured names.
	rules []headerRule
}

func newHeaderPolicy(h IdentityHeaders) headerPolicy {
	p := headerPolicy{
		enabled:   h.Enabled,
		userKey:   textproto.CanonicalMIMEHeaderKey(h.UserField),
		groupsKey: textproto.CanonicalMIMEHeaderKey(h.GroupsField),
		separator: h.GroupSeparator,
		rules:     append([]headerRule(nil), strippedRequestHeaders...),
	}
	// Configured names outside the families above (say X-Auth-User).
	for _, name := range []string{h.UserField, h.GroupsField} {
		if name != "" && !headerStripped(strippedRequestHeaders, name) {
			p.rules = append(p.rules, headerRule{name: headerSpelling(name)})
		}
	}
	return p
}

// headerSpelling is name in lower case with "-" for "_".
func headerSpelling(name string) string {
	return strings.Map(func(c rune) rune {
		if 'A' <= c && c <= 'Z' {
			return c + 'a' - 'A'
		}
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			return '-'
		}
		return c
	}, name)
}

// sameHeaderSpelling reports whether k (any case, any separator for "-")
// spells rule, which is lower case with "-". It does not allocate: it runs for every
// header of every request.
func sameHeaderSpelling(k, rule string) bool {
	if len(k) != len(rule) {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case !('a' <= c && c <= 'z' || '0' <= c && c <= '9'):
			// Any separator, not only "_": some upstream adapters (CGI, WSGI) turn every one
			// into "_", so X.Remote.User reaches them as X_REMOTE_USER.
			c = '-'
		}
		if c != rule[i] {
			return false
		}
	}
	return true
}

// headerStripped reports whether rules remove header k.
func headerStripped(rules []headerRule, k string) bool {
	for _, r := range rules {
		if r.prefix {
			if len(k) >= len(r.name) && sameHeaderSpelling(k[:len(r.name)], r.name) {
				return true
			}
		} else if sameHeaderSpelling(k, r.name) {
			return true
		}
	}
	return false
}

// sanitize removes credentials and client-sent identity headers: every
// header strippedRequestHeaders or the configured names match.
func (p headerPolicy) sanitize(h http.Header) {
	for k := range h {
		if headerStripped(p.rules, k) {
			delete(h, k)
		}
	}
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
