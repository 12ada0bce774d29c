package config

import (
	"fmt"
	"net/http"
	"path"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ProbePathPrefix is where the endpoints port serves probe pass-throughs: the probe of
// METHOD:PORT:PATH is served at /probe/PORT/PATH, so it never collides with the proxy's own
// /healthz, /readyz and /metrics, nor with another port's probe.
const ProbePathPrefix = "/probe/"

// ProbePassthrough is one kubelet probe that the endpoints port forwards, without credentials,
// to the app on loopback. Only this exact request is forwarded: the method, the cleaned path and
// the query, nothing else.
type ProbePassthrough struct {
	// Scheme is how the app is reached: http or https (not verified, like the kubelet's own
	// probes).
	Scheme string
	// Method is GET or HEAD.
	Method string
	// Port is the app's port on 127.0.0.1.
	Port int
	// Path is the app's probe path: absolute and clean.
	Path string
	// Query is the probe's raw query, empty for none; a request must carry exactly this query.
	Query string
}

// ServedPath is the path the kubelet probes on the endpoints port.
func (p ProbePassthrough) ServedPath() string {
	return ProbePathPrefix + strconv.Itoa(p.Port) + p.Path
}

// ServedURI is the path and query the kubelet probes on the endpoints port.
func (p ProbePassthrough) ServedURI() string {
	if p.Query == "" {
		return p.ServedPath()
	}
	return p.ServedPath() + "?" + p.Query
}

// String is the flag form, [SCHEME:]METHOD:PORT:PATH[?QUERY], the scheme only when https.
func (p ProbePassthrough) String() string {
	s := p.Method + ":" + strconv.Itoa(p.Port) + ":" + p.Path
	if p.Query != "" {
		s += "?" + p.Query
	}
	if p.Scheme == "https" {
		s = "https:" + s
	}
	return s
}

const probeAllowed = "[http:|https:]METHOD:PORT:PATH[?QUERY] with METHOD GET or HEAD, PORT 1-65535 and PATH absolute, clean, without escapes, spaces or fragments, e.g. GET:9400:/health"

// ParseProbePassthrough parses the --probe-passthrough value [SCHEME:]METHOD:PORT:PATH[?QUERY].
func ParseProbePassthrough(v string) (ProbePassthrough, error) {
	bad := func(why string) (ProbePassthrough, error) {
		return ProbePassthrough{}, field.Invalid(flag("--probe-passthrough"), v, why+"; allowed: "+probeAllowed)
	}
	p := ProbePassthrough{Scheme: "http"}
	rest := v
	for _, s := range []string{"http:", "https:"} {
		if strings.HasPrefix(rest, s) {
			p.Scheme, rest = strings.TrimSuffix(s, ":"), rest[len(s):]
		}
	}
	parts := strings.SplitN(rest, ":", 3)
	if len(parts) != 3 {
		return bad("not METHOD:PORT:PATH")
	}
	switch parts[0] {
	case http.MethodGet, http.MethodHead:
		p.Method = parts[0]
	default:
		return bad("method " + strconv.Quote(parts[0]) + " is not GET or HEAD")
	}
	port, err := strconv.Atoi(parts[1])
	if err != nil || port < 1 || port > 65535 || parts[1] != strconv.Itoa(port) {
		return bad("bad port " + strconv.Quote(parts[1]))
	}
	p.Port = port
	p.Path, p.Query, _ = strings.Cut(parts[2], "?")
	if why := checkProbePath(p.Path); why != "" {
		return bad(why)
	}
	if strings.ContainsAny(p.Query, "#%?") || !printableNoSpace(p.Query) {
		return bad("bad query " + strconv.Quote(p.Query))
	}
	return p, nil
}

// checkProbePath accepts only absolute, clean paths made of unreserved and sub-delim characters,
// so that the served path has exactly one spelling on the wire.
func checkProbePath(p string) string {
	if !strings.HasPrefix(p, "/") {
		return "the path must start with /"
	}
	if strings.ContainsAny(p, "%#?\\") || !printableNoSpace(p) {
		return "the path holds an escape, a fragment, a backslash, a space or a control character"
	}
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && p != "/" {
		clean += "/"
	}
	if clean != p {
		return "the path is not clean (want " + clean + ")"
	}
	return ""
}

func printableNoSpace(s string) bool {
	for _, r := range s {
		if r <= ' ' || r >= 0x7f {
			return false
		}
	}
	return true
}

// validateProbes checks probe pass-throughs against the listeners: they need the endpoints port,
// and two of them may not be served at the same URI.
func validateProbes(l ListenConfig) field.ErrorList {
	var errs field.ErrorList
	fld := flag("--probe-passthrough")
	seen := map[string]ProbePassthrough{}
	for _, p := range l.ProbePassthrough {
		if p.Scheme != "http" && p.Scheme != "https" || p.Method != http.MethodGet && p.Method != http.MethodHead ||
			p.Port < 1 || p.Port > 65535 || checkProbePath(p.Path) != "" || strings.ContainsAny(p.Query, "#%?") || !printableNoSpace(p.Query) {
			errs = append(errs, field.Invalid(fld, p.String(), "allowed: "+probeAllowed))
			continue
		}
		if l.ProxyEndpointsPort == 0 {
			errs = append(errs, field.Invalid(fld, p.String(), "needs --proxy-endpoints-port (probes are served there)"))
			continue
		}
		if other, ok := seen[p.ServedURI()]; ok && other != p {
			errs = append(errs, field.Invalid(fld, p.String(), fmt.Sprintf("conflicts with %s: both are served at %s", other.String(), p.ServedURI())))
		}
		seen[p.ServedURI()] = p
	}
	return errs
}
