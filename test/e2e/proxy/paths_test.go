package proxy_test

import (
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPathsAreCleanedBeforeCheckingAndForwarding(t *testing.T) {
	ns := newNamespace(t)
	// RBAC allows every path: only --allow-paths stands between callers and /debug.
	allowNonResource(t, saSubject(ns, "all"), "*")
	waitNonResource(t, saUser(ns, "all"), saGroups(ns), "/debug")
	tok := token(t, ns, "all")

	front, up, pk := newAPIFront(t), newUpstream(t), newPKI(t)
	p := startProxy(t, append(pk.servingFlags(t), "--upstream="+up.url, "--kubeconfig="+front.kubeconfig, "--allow-paths=/metrics,/metrics/*")...)
	c := pk.client()
	for _, tc := range []struct {
		raw      string
		want     int
		upstream string
	}{
		{"/metrics", 200, "/metrics"},
		{"/metrics/../debug", 404, ""},
		{"/metrics/%2e%2e/debug", 404, ""},
		{"/metrics/%2E%2e/debug", 404, ""},
		{"/metrics/..%2fdebug", 404, ""},
		{"//debug", 404, ""},
		{"/./debug", 404, ""},
		{"/metrics%5c..%5cdebug", 400, ""},
		{"/metrics/x/../../debug", 404, ""},
		{"/debug/../metrics", 200, "/metrics"},
		{"//metrics", 200, "/metrics"},
		{"/metrics/./cpu", 200, "/metrics/cpu"},
		{"/metrics/%2e/cpu", 200, "/metrics/cpu"},
	} {
		t.Run(tc.raw, func(t *testing.T) {
			before := up.hits.Load()
			code, _ := p.get(t, c, tc.raw, bearer(tok))
			if code != tc.want {
				t.Fatalf("got %d, want %d", code, tc.want)
			}
			if tc.upstream == "" {
				if up.hits.Load() != before {
					t.Fatal("the upstream was reached")
				}
				return
			}
			if got := up.last(t).URL.Path; got != tc.upstream {
				t.Fatalf("upstream saw %q, want %q", got, tc.upstream)
			}
			if raw := up.last(t).RequestURI; strings.Contains(raw, "..") || strings.Contains(raw, "%2") || strings.HasPrefix(raw, "//") {
				t.Fatalf("upstream request line %q is not the cleaned path", raw)
			}
		})
	}
}

func TestIgnorePaths(t *testing.T) {
	front, up, pk := newAPIFront(t), newUpstream(t), newPKI(t)
	p := startProxy(t, append(pk.servingFlags(t), "--upstream="+up.url, "--kubeconfig="+front.kubeconfig, "--ignore-paths=/healthz,/static/*")...)
	c := pk.client()
	h := http.Header{"Authorization": {"Bearer leaked"}, "X-Remote-User": {"admin"}}
	if code, _ := p.get(t, c, "/healthz", h); code != 200 {
		t.Fatalf("/healthz: %d", code)
	}
	seen := up.last(t)
	if seen.Header.Get("Authorization") != "" || seen.Header.Get("X-Remote-User") != "" {
		t.Fatalf("ignored path forwarded credentials or identity: %v", seen.Header)
	}
	if code, _ := p.get(t, c, "/static/app.js", nil); code != 200 {
		t.Fatalf("/static/app.js: %d", code)
	}
	for _, raw := range []string{"/metrics", "/healthz/../metrics", "/static/%2e%2e/metrics"} {
		if code, _ := p.get(t, c, raw, nil); code != 401 {
			t.Errorf("%s without credentials: %d, want 401", raw, code)
		}
	}
	if tr, sar := front.reviews(); tr != 0 || sar != 0 {
		t.Fatalf("reviews for ignored paths: %d TokenReviews, %d SARs", tr, sar)
	}
}

func TestIdentityHeaders(t *testing.T) {
	ns := newNamespace(t)
	allowNonResource(t, saSubject(ns, "reader"), "/metrics")
	waitNonResource(t, saUser(ns, "reader"), saGroups(ns), "/metrics")
	tok := token(t, ns, "reader")
	spoof := func() http.Header {
		return http.Header{"Authorization": {"Bearer " + tok}, "X-Remote-User": {"admin"}, "X-Remote-Groups": {"system:masters"},
			"X-Remote-Extra-Scopes": {"all"}, "X-Who": {"admin"}, "X-Teams": {"system:masters"}}
	}
	front, pk := newAPIFront(t), newPKI(t)

	t.Run("disabled: client-sent identity removed", func(t *testing.T) {
		up := newUpstream(t)
		p := startProxy(t, append(pk.servingFlags(t), "--upstream="+up.url, "--kubeconfig="+front.kubeconfig)...)
		if code, _ := p.get(t, pk.client(), "/metrics", spoof()); code != 200 {
			t.Fatalf("got %d", code)
		}
		h := up.last(t).Header
		for _, k := range []string{"Authorization", "X-Remote-User", "X-Remote-Groups", "X-Remote-Extra-Scopes"} {
			if v := h.Values(k); len(v) > 0 {
				t.Errorf("upstream saw %s: %q", k, v)
			}
		}
	})
	t.Run("enabled: set by the proxy", func(t *testing.T) {
		up := newUpstream(t)
		p := startProxy(t, append(pk.servingFlags(t), "--upstream="+up.url, "--kubeconfig="+front.kubeconfig, "--auth-header-fields-enabled")...)
		if code, _ := p.get(t, pk.client(), "/metrics", spoof()); code != 200 {
			t.Fatalf("got %d", code)
		}
		h := up.last(t).Header
		if got := h.Values("X-Remote-User"); len(got) != 1 || got[0] != saUser(ns, "reader") {
			t.Errorf("X-Remote-User %q", got)
		}
		groups := strings.Split(h.Get("X-Remote-Groups"), "|")
		if len(h.Values("X-Remote-Groups")) != 1 || !contains(groups, "system:serviceaccounts:"+ns) || contains(groups, "system:masters") {
			t.Errorf("X-Remote-Groups %q", h.Values("X-Remote-Groups"))
		}
		if h.Get("Authorization") != "" || h.Get("X-Remote-Extra-Scopes") != "" {
			t.Errorf("upstream saw %v", h)
		}
	})
	t.Run("enabled with custom names", func(t *testing.T) {
		up := newUpstream(t)
		p := startProxy(t, append(pk.servingFlags(t), "--upstream="+up.url, "--kubeconfig="+front.kubeconfig, "--auth-header-fields-enabled",
			"--auth-header-user-field-name=X-Who", "--auth-header-groups-field-name=X-Teams", "--auth-header-groups-field-separator=,")...)
		if code, _ := p.get(t, pk.client(), "/metrics", spoof()); code != 200 {
			t.Fatalf("got %d", code)
		}
		h := up.last(t).Header
		if h.Get("X-Who") != saUser(ns, "reader") || !strings.Contains(h.Get("X-Teams"), "system:serviceaccounts,") {
			t.Errorf("X-Who %q X-Teams %q", h.Get("X-Who"), h.Get("X-Teams"))
		}
		if h.Get("X-Remote-User") != "" || h.Get("X-Remote-Groups") != "" {
			t.Errorf("default identity headers reached the upstream: %v", h)
		}
	})
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestUpstreamKindsAndHTTP2(t *testing.T) {
	ns := newNamespace(t)
	allowNonResource(t, saSubject(ns, "reader"), "/metrics")
	waitNonResource(t, saUser(ns, "reader"), saGroups(ns), "/metrics")
	tok := token(t, ns, "reader")
	front, pk := newAPIFront(t), newPKI(t)

	t.Run("h2c upstream", func(t *testing.T) {
		rec := &upstream{}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: rec, ReadHeaderTimeout: 5 * time.Second, Protocols: new(http.Protocols)}
		srv.Protocols.SetUnencryptedHTTP2(true) // speaks h2c only
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() { _ = srv.Close() })
		p := startProxy(t, append(pk.servingFlags(t), "--upstream=http://"+ln.Addr().String()+"/", "--upstream-force-h2c", "--kubeconfig="+front.kubeconfig)...)
		if code, body := p.get(t, pk.client(), "/metrics", bearer(tok)); code != 200 || body != "upstream:/metrics" {
			t.Fatalf("got %d %q", code, body)
		}
		if proto := rec.last(t).Proto; proto != "HTTP/2.0" {
			t.Fatalf("upstream spoke %s", proto)
		}
	})
	t.Run("unix socket upstream", func(t *testing.T) {
		sock := filepath.Join(t.TempDir(), "exporter.sock")
		ln, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		rec := &upstream{}
		srv := &http.Server{Handler: rec, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() { _ = srv.Close() })
		p := startProxy(t, append(pk.servingFlags(t), "--upstream=unix://"+sock, "--kubeconfig="+front.kubeconfig)...)
		if code, body := p.get(t, pk.client(), "/metrics", bearer(tok)); code != 200 || body != "upstream:/metrics" {
			t.Fatalf("got %d %q", code, body)
		}
	})
	t.Run("HTTP/2 client", func(t *testing.T) {
		up := newUpstream(t)
		p := startProxy(t, append(pk.servingFlags(t), "--upstream="+up.url, "--kubeconfig="+front.kubeconfig)...)
		req, _ := http.NewRequest(http.MethodGet, p.URL+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := pk.client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
			t.Fatalf("got %d over %s, want 200 over HTTP/2", resp.StatusCode, resp.Proto)
		}
	})
}
