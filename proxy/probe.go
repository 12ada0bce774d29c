package proxy

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
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
		return ProbePassthrough{}, fieldErr("--probe-passthrough", v, "%s; allowed: %s", why, probeAllowed)
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
func validateProbes(l ListenConfig) error {
	seen := map[string]ProbePassthrough{}
	for _, p := range l.ProbePassthrough {
		if p.Scheme != "http" && p.Scheme != "https" || p.Method != http.MethodGet && p.Method != http.MethodHead ||
			p.Port < 1 || p.Port > 65535 || checkProbePath(p.Path) != "" || strings.ContainsAny(p.Query, "#%?") || !printableNoSpace(p.Query) {
			return fieldErr("--probe-passthrough", p.String(), "allowed: %s", probeAllowed)
		}
		if l.ProxyEndpointsPort == 0 {
			return fieldErr("--probe-passthrough", p.String(), "needs --proxy-endpoints-port (probes are served there)")
		}
		if other, ok := seen[p.ServedURI()]; ok && other != p {
			return fieldErr("--probe-passthrough", p.String(), "conflicts with %s: both are served at %s", other.String(), p.ServedURI())
		}
		seen[p.ServedURI()] = p
	}
	return nil
}

// probeBodyLimit bounds the app's answer passed back; the kubelet reads at most 10 KiB of it.
const probeBodyLimit = 64 * 1024

// probeHandler serves the probe pass-throughs in front of the endpoints' own handler. A request
// is forwarded only when its path, query and method are exactly those of a configured probe; it
// carries no body and no header but User-Agent and Accept, and only the status, Content-Type and
// (at most 64 KiB of) body come back. Everything else goes to next.
type probeHandler struct {
	probes map[string]ProbePassthrough // by ServedPath
	client *http.Client
	next   http.Handler
}

func newProbeHandler(probes []ProbePassthrough, next http.Handler) http.Handler {
	if len(probes) == 0 {
		return next
	}
	h := &probeHandler{probes: map[string]ProbePassthrough{}, next: next}
	for _, p := range probes {
		h.probes[p.ServedPath()] = p
	}
	h.client = &http.Client{
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 2,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: 5 * time.Second,
			DisableCompression:  true,
			// The kubelet does not verify an app's certificate either; the address is loopback.
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, //nolint:gosec // loopback probe
		},
		// A redirect is the app's answer: passed back as its status only.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       time.Minute,
	}
	return h
}

func (h *probeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, ProbePathPrefix) && !strings.HasPrefix(r.URL.RawPath, ProbePathPrefix) {
		h.next.ServeHTTP(w, r)
		return
	}
	p, ok := h.probes[r.URL.Path]
	// One spelling only: no escapes (RawPath is set when the wire form differs from Path), the
	// exact query, and an origin-form request target.
	if !ok || r.URL.RawPath != "" || r.URL.RawQuery != p.Query || r.URL.ForceQuery || r.URL.Host != "" || r.URL.Fragment != "" {
		http.NotFound(w, r)
		return
	}
	if r.Method != p.Method {
		w.Header().Set("Allow", p.Method)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	target := p.Scheme + "://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(p.Port)) + p.Path
	if p.Query != "" {
		target += "?" + p.Query
	}
	req, err := http.NewRequestWithContext(r.Context(), p.Method, target, nil)
	if err != nil {
		http.Error(w, "bad probe", http.StatusInternalServerError)
		return
	}
	for _, k := range []string{"User-Agent", "Accept"} {
		if v := r.Header.Get(k); v != "" {
			req.Header.Set(k, v)
		}
	}
	resp, err := h.client.Do(req)
	if err != nil {
		http.Error(w, "probe target unreachable", http.StatusBadGateway)
		return
	}
	defer func() { _ = resp.Body.Close() }()
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, io.LimitReader(resp.Body, probeBodyLimit))
}
