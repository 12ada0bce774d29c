package proxy

import (
	"path"
	"strings"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
)

// cleanRequestPath returns the canonical form of a request path (already
// percent-decoded by net/http, so %2e%2e is ".."): rooted, without "." or ".."
// segments and without repeated slashes; a trailing slash is kept. ok is
// false for paths no upstream should ever see: those with a backslash (which
// some servers treat as "/") or a control character.
//
// The cleaned path is what allow/ignore patterns and authorization see, and
// it is also exactly what is forwarded, so no trick can make the upstream
// serve a path that was not checked.
func cleanRequestPath(p string) (cleaned string, ok bool) {
	for i := 0; i < len(p); i++ {
		if c := p[i]; c == '\\' || c < 0x20 || c == 0x7f {
			return "", false
		}
	}
	if p == "" || p == "/" {
		return "/", true
	}
	if p[0] != '/' {
		p = "/" + p
	}
	c := path.Clean(p) // without a copy when p is clean already
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c, true
}

// pathDecision is what the path policy says about a request.
type pathDecision int

const (
	pathChecked  pathDecision = iota // authenticate and authorize, then proxy
	pathIgnored                      // proxy without authentication or authorization
	pathNotFound                     // answer 404
)

// decidePath applies the policy to a cleaned path.
func decidePath(p config.PathPolicy, cleaned string) pathDecision {
	switch {
	case !p.Serves(cleaned):
		return pathNotFound
	case p.Ignores(cleaned):
		return pathIgnored
	}
	return pathChecked
}

// joinUpstreamPath puts the upstream URL's base path in front of the cleaned
// request path, with exactly one slash between them.
func joinUpstreamPath(base, cleaned string) string {
	if base == "" || base == "/" {
		return cleaned
	}
	return strings.TrimSuffix(base, "/") + cleaned
}
