package proxy

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
)

// endpoints serves /healthz, /readyz and /metrics, and the kubelet probes
// passed through to the app (--probe-passthrough).
func (s *Server) endpoints() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	mux.Handle("/metrics", s.metrics.handler())
	return newProbeHandler(s.cfg.Listen.ProbePassthrough, mux)
}

// probeBodyLimit bounds the app's answer passed back; the kubelet reads at most 10 KiB of it.
const probeBodyLimit = 64 * 1024

// probeHandler serves the probe pass-throughs in front of the endpoints' own handler. A request
// is forwarded only when its path, query and method are exactly those of a configured probe; it
// carries no body and no header but User-Agent and Accept, and only the status, Content-Type and
// (at most 64 KiB of) body come back. Everything else goes to next.
type probeHandler struct {
	probes map[string]config.ProbePassthrough // by ServedPath
	client *http.Client
	next   http.Handler
}

func newProbeHandler(probes []config.ProbePassthrough, next http.Handler) http.Handler {
	if len(probes) == 0 {
		return next
	}
	h := &probeHandler{probes: map[string]config.ProbePassthrough{}, next: next}
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
	if !strings.HasPrefix(r.URL.Path, config.ProbePathPrefix) && !strings.HasPrefix(r.URL.RawPath, config.ProbePathPrefix) {
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
