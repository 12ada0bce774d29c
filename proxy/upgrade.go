package proxy

import (
	"errors"
	"net/http"
	"net/textproto"
	"strings"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
)

// upgradePolicy decides requests that ask to switch protocols (an Upgrade
// header). Once the upstream answers 101, net/http's ReverseProxy copies
// bytes both ways until either side closes: whatever travels in the tunnel
// is seen by neither the path policy nor a review.
type upgradePolicy struct {
	allowed []string // --allowed-upgrades, protocol names without version
}

func newUpgradePolicy(allowed []string) upgradePolicy {
	return upgradePolicy{allowed: allowed}
}

var (
	// An upgrade to HTTP/2 (h2c) or any HTTP turns the connection into one
	// on which the client sends new requests, for any path, to an upstream
	// that accepts it, none of them checked. So it is refused on every path,
	// ignored ones too, whatever --allowed-upgrades says.
	errHTTPUpgrade = errors.New("an upgrade to HTTP/2 (h2c) or another HTTP is never forwarded")
	// Other protocols only when --allowed-upgrades names them.
	errUpgradeNotAllowed = errors.New("this protocol upgrade is not allowed (--allowed-upgrades)")
	// An ignored path needs no credentials; a tunnel there would give any
	// stranger a connection to the upstream for as long as it likes.
	errUpgradeIgnoredPath = errors.New("upgrades are not allowed on --ignore-paths")
)

// check reports whether the request asks for an upgrade, and an error when
// it must be refused whatever its path and identity. It runs before
// anything else.
func (p upgradePolicy) check(h http.Header) (upgrade bool, err error) {
	for k := range h {
		// Only meaningful with Upgrade: h2c (RFC 7540 3.2). A lenient
		// upstream may take it in any spelling, or with Upgrade named
		// in a way net/http does not merge.
		if config.SameHeaderSpelling(k, "http2-settings") {
			return false, errHTTPUpgrade
		}
	}
	// Any Upgrade header counts, with or without "Connection: Upgrade":
	// the check does not depend on how the ReverseProxy reads them.
	for _, v := range h["Upgrade"] {
		for tok := range strings.SplitSeq(v, ",") {
			tok = textproto.TrimString(tok)
			if tok == "" {
				continue
			}
			upgrade = true
			proto, _, _ := strings.Cut(tok, "/") // protocol-version
			if config.CarriesHTTP(proto) {
				return true, errHTTPUpgrade
			}
			if !p.allows(proto) {
				err = errUpgradeNotAllowed // the later tokens may still be h2c
			}
		}
	}
	return upgrade, err
}

func (p upgradePolicy) allows(proto string) bool {
	for _, a := range p.allowed {
		if strings.EqualFold(a, proto) {
			return true
		}
	}
	return false
}
