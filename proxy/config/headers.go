package config

import "strings"

// HeaderRule names request headers no client may send to the upstream.
type HeaderRule struct {
	Name   string // lower case, "-" between words
	Prefix bool   // every header whose name starts with Name
}

// StrippedRequestHeaders are removed from every request before anything is
// forwarded, on every path (ignored ones too), whatever the upstream.
//
// They are matched without regard to case and with "_" the same as "-":
// CGI, PHP, Rack, WSGI (Django, Flask) and nginx with underscores_in_headers
// all read X_Remote_User and X-Remote-User as the same HTTP_X_REMOTE_USER, so
// an upstream may believe a spelling net/http thinks is another header.
//
// This is the one list: the proxy's server strips it and adds the configured
// --auth-header-*-field-name headers to it, and refuses h2c's HTTP2-Settings
// earlier; validation refuses a rewrite that reads a header on it.
var StrippedRequestHeaders = []HeaderRule{
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

// HeaderSpelling is name in lower case with "-" for "_".
func HeaderSpelling(name string) string {
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

// SameHeaderSpelling reports whether k (any case, any separator for "-")
// spells rule, which is lower case with "-". It does not allocate: it runs for every
// header of every request.
func SameHeaderSpelling(k, rule string) bool {
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

// HeaderStripped reports whether rules remove header k.
func HeaderStripped(rules []HeaderRule, k string) bool {
	for _, r := range rules {
		if r.Prefix {
			if len(k) >= len(r.Name) && SameHeaderSpelling(k[:len(r.Name)], r.Name) {
				return true
			}
		} else if SameHeaderSpelling(k, r.Name) {
			return true
		}
	}
	return false
}
