package proxy_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"

	authzv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
)

func TestTokensWithAndWithoutRBAC(t *testing.T) {
	ns := newNamespace(t)
	allowed, denied := token(t, ns, "allowed"), token(t, ns, "denied")
	allowNonResource(t, saSubject(ns, "allowed"), "/metrics")
	waitNonResource(t, saUser(ns, "allowed"), saGroups(ns), "/metrics")

	front, up, pk := newAPIFront(t), newUpstream(t), newPKI(t)
	p := startProxy(t, append(pk.servingFlags(t), "--upstream="+up.url, "--kubeconfig="+front.kubeconfig)...)
	c := pk.client()
	for _, tc := range []struct {
		name   string
		header http.Header
		want   int
	}{
		{"no credentials", nil, 401},
		{"bad token", bearer("not-a-token"), 401},
		{"token of a deleted-looking account", bearer(allowed + "x"), 401},
		{"token without RBAC", bearer(denied), 403},
		{"token with RBAC on /metrics", bearer(allowed), 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := up.hits.Load()
			code, body := p.get(t, c, "/metrics", tc.header)
			if code != tc.want {
				t.Fatalf("got %d %q, want %d", code, body, tc.want)
			}
			if reached := up.hits.Load() != before; reached != (code == 200) {
				t.Fatalf("upstream reached=%v for %d", reached, code)
			}
		})
	}
	if code, _ := p.get(t, c, "/debug", bearer(allowed)); code != 403 {
		t.Fatalf("path outside the ClusterRole: %d", code)
	}
	if h := up.last(t).Header.Get("Authorization"); h != "" {
		t.Fatalf("upstream saw Authorization %q", h)
	}
}

func TestTokenAudiences(t *testing.T) {
	ns := newNamespace(t)
	allowNonResource(t, saSubject(ns, "scraper"), "/metrics")
	waitNonResource(t, saUser(ns, "scraper"), saGroups(ns), "/metrics")
	forProxy := token(t, ns, "scraper", "rbac-proxy")
	forAPI := token(t, ns, "scraper") // the API server's own audience

	front, up, pk := newAPIFront(t), newUpstream(t), newPKI(t)
	p := startProxy(t, append(pk.servingFlags(t), "--upstream="+up.url, "--kubeconfig="+front.kubeconfig, "--auth-token-audiences=rbac-proxy,other")...)
	c := pk.client()
	if code, _ := p.get(t, c, "/metrics", bearer(forProxy)); code != 200 {
		t.Fatalf("token for the proxy's audience: %d", code)
	}
	if code, _ := p.get(t, c, "/metrics", bearer(forAPI)); code != 401 {
		t.Fatalf("token for the API server's audience: %d, want 401", code)
	}
}

func TestClientCertificatesWithSAR(t *testing.T) {
	allowNonResource(t, rbacv1.Subject{Kind: "Group", APIGroup: "rbac.authorization.k8s.io", Name: "e2e-monitors"}, "/metrics")
	waitNonResource(t, "scraper", []string{"e2e-monitors"}, "/metrics")

	front, up, pk := newAPIFront(t), newUpstream(t), newPKI(t)
	p := startProxy(t, append(pk.servingFlags(t), "--upstream="+up.url, "--kubeconfig="+front.kubeconfig, pk.clientCAFlag(t))...)
	rogue := newPKI(t)
	for _, tc := range []struct {
		name string
		c    *http.Client
		want int
	}{
		{"certificate in an allowed group (O)", pk.client(pk.clientCert(t, "scraper", "e2e-monitors")), 200},
		{"certificate without RBAC", pk.client(pk.clientCert(t, "someone-else")), 403},
		{"certificate from an untrusted CA", pk.client(rogue.clientCert(t, "scraper", "e2e-monitors")), 401},
	} {
		if code, _ := p.get(t, tc.c, "/metrics", nil); code != tc.want {
			t.Errorf("%s: got %d, want %d", tc.name, code, tc.want)
		}
	}
	if tr, _ := front.reviews(); tr != 0 {
		t.Fatalf("%d TokenReviews for certificate requests, want 0", tr)
	}
}

func TestStaticMTLSNeedsNoAPIServer(t *testing.T) {
	up, pk := newUpstream(t), newPKI(t)
	scraper := pk.client(pk.clientCert(t, "dcgm-scraper"))
	inGroup := pk.client(pk.clientCert(t, "anyone", "gpu-monitors"))
	other := pk.client(pk.clientCert(t, "intruder"))
	check := func(t *testing.T, p *proxyProc) {
		for _, tc := range []struct {
			name   string
			c      *http.Client
			header http.Header
			want   int
		}{
			{"allowed user", scraper, nil, 200},
			{"allowed group", inGroup, nil, 200},
			{"other certificate", other, nil, 403},
			{"no credentials", pk.client(), nil, 401},
		} {
			if code, _ := p.get(t, tc.c, "/metrics", tc.header); code != tc.want {
				t.Errorf("%s: got %d, want %d", tc.name, code, tc.want)
			}
		}
	}
	static := []string{"--upstream=" + up.url, pk.clientCAFlag(t), "--authz=static", "--allowed-users=dcgm-scraper", "--allowed-groups=gpu-monitors"}

	t.Run("no API server configured", func(t *testing.T) {
		p := startProxy(t, append(pk.servingFlags(t), static...)...)
		check(t, p)
		if code, _ := p.get(t, pk.client(), "/metrics", bearer("some-token")); code != 401 {
			t.Errorf("bearer token without an API server: %d, want 401", code)
		}
	})
	t.Run("API server black-holed", func(t *testing.T) {
		front := newAPIFront(t)
		front.setBlackHole(true)
		p := startProxy(t, append(pk.servingFlags(t), append(static, "--kubeconfig="+front.kubeconfig)...)...)
		check(t, p)
	})
}

func TestResourceAttributesAndRewrites(t *testing.T) {
	gpu, other := newNamespace(t), newNamespace(t)
	allowResource(t, gpu, saSubject(gpu, "prometheus"), "services", "proxy", "dcgm-exporter")
	user := saUser(gpu, "prometheus")
	waitAllowed(t, authzv1.SubjectAccessReviewSpec{User: user, Groups: saGroups(gpu), ResourceAttributes: &authzv1.ResourceAttributes{
		Namespace: gpu, Verb: "get", Resource: "services", Subresource: "proxy", Name: "dcgm-exporter"}})
	tok := token(t, gpu, "prometheus")

	front, up, pk := newAPIFront(t), newUpstream(t), newPKI(t)
	t.Run("--resource-attributes", func(t *testing.T) {
		p := startProxy(t, append(pk.servingFlags(t), "--upstream="+up.url, "--kubeconfig="+front.kubeconfig,
			fmt.Sprintf("--resource-attributes=namespace=%s,resource=services,subresource=proxy,name=dcgm-exporter", gpu))...)
		if code, _ := p.get(t, pk.client(), "/metrics", bearer(tok)); code != 200 {
			t.Fatalf("allowed resource: %d", code)
		}
		p2 := startProxy(t, append(pk.servingFlags(t), "--upstream="+up.url, "--kubeconfig="+front.kubeconfig,
			fmt.Sprintf("--resource-attributes=namespace=%s,resource=services,subresource=proxy,name=dcgm-exporter", other))...)
		if code, _ := p2.get(t, pk.client(), "/metrics", bearer(tok)); code != 403 {
			t.Fatalf("resource in another namespace: %d", code)
		}
	})
	t.Run("config file rewrites", func(t *testing.T) {
		cfg := filepath.Join(t.TempDir(), "config.yaml")
		if err := os.WriteFile(cfg, []byte(`
authorization:
  rewrites:
    byQueryParameter:
      name: namespace
    byHttpHeader:
      name: x-namespace
  resourceAttributes:
    namespace: "{{ .Value }}"
    apiVersion: v1
    resource: services
    subresource: proxy
    name: dcgm-exporter
`), 0o600); err != nil {
			t.Fatal(err)
		}
		p := startProxy(t, append(pk.servingFlags(t), "--upstream="+up.url, "--kubeconfig="+front.kubeconfig, "--config-file="+cfg)...)
		c := pk.client()
		for _, tc := range []struct {
			name   string
			query  string
			header http.Header
			want   int
		}{
			{"query parameter, allowed namespace", "?namespace=" + gpu, nil, 200},
			{"query parameter, other namespace", "?namespace=" + other, nil, 403},
			{"header, allowed namespace", "", http.Header{"X-Namespace": {gpu}}, 200},
			{"allowed and other: all must pass", "?namespace=" + gpu, http.Header{"X-Namespace": {other}}, 403},
			{"no value", "", nil, 400},
		} {
			h := bearer(tok)
			for k, v := range tc.header {
				h[k] = v
			}
			if code, _ := p.get(t, c, "/metrics"+tc.query, h); code != tc.want {
				t.Errorf("%s: got %d, want %d", tc.name, code, tc.want)
			}
		}
	})
}

// TestBurstMakesOneReviewEach: 50 concurrent clients with one fresh token
// cause at most one TokenReview and one SubjectAccessReview at the API server.
func TestBurstMakesOneReviewEach(t *testing.T) {
	ns := newNamespace(t)
	allowNonResource(t, saSubject(ns, "burst"), "/metrics")
	waitNonResource(t, saUser(ns, "burst"), saGroups(ns), "/metrics")
	tok := token(t, ns, "burst")

	front, up, pk := newAPIFront(t), newUpstream(t), newPKI(t)
	p := startProxy(t, append(pk.servingFlags(t), "--upstream="+up.url, "--kubeconfig="+front.kubeconfig)...)
	var wg sync.WaitGroup
	codes := make(chan int, 50*40)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := pk.client()
			for range 40 {
				code, _ := p.get(t, c, "/metrics", bearer(tok))
				codes <- code
			}
		}()
	}
	wg.Wait()
	close(codes)
	n := 0
	for code := range codes {
		n++
		if code != 200 {
			t.Fatalf("a scrape got %d", code)
		}
	}
	tr, sar := front.reviews()
	t.Logf("%d scrapes from 50 concurrent clients with one token: %d TokenReviews, %d SubjectAccessReviews", n, tr, sar)
	if tr > 1 || sar > 1 {
		t.Fatalf("%d TokenReviews and %d SARs for one token, want at most 1 each", tr, sar)
	}
}
