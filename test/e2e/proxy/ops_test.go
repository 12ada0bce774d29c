package proxy_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rbac-proxy/rbac-proxy/internal/testkit"
	"github.com/rbac-proxy/rbac-proxy/internal/testpki"
	"github.com/rbac-proxy/rbac-proxy/test/framework"
)

func TestCertificateRotationDataSymlinkSwap(t *testing.T) {
	ns := newNamespace(t)
	allowNonResource(t, saSubject(ns, "reader"), "/metrics")
	waitNonResource(t, saUser(ns, "reader"), saGroups(ns), "/metrics")
	tok := token(t, ns, "reader")

	ca1, _ := testpki.NewCA("ca-one")
	ca2, _ := testpki.NewCA("ca-two")
	serving1, _ := ca1.Server("127.0.0.1")
	serving2, _ := ca2.Server("127.0.0.1")
	vol, err := testkit.NewProjection(t.TempDir(), map[string][]byte{"tls.crt": serving1.CertPEM, "tls.key": serving1.KeyPEM, "ca.crt": ca1.CertPEM})
	if err != nil {
		t.Fatal(err)
	}
	front, up := newAPIFront(t), newUpstream(t)
	p := startProxy(t, "--upstream="+up.url, "--kubeconfig="+front.kubeconfig,
		"--tls-cert-file="+vol.Path("tls.crt"), "--tls-private-key-file="+vol.Path("tls.key"), "--client-ca-file="+vol.Path("ca.crt"))

	pool := ca1.Pool()
	pool.AddCert(ca2.Cert)
	fresh := func(certs ...tls.Certificate) *http.Client { // a new handshake per request
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
			TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: certs}}}
	}
	client1, _ := ca1.Client("reader-cert")
	client2, _ := ca2.Client("reader-cert")
	allowNonResource(t, rbacUser("reader-cert"), "/metrics")
	waitNonResource(t, "reader-cert", nil, "/metrics")

	// Scrapes run throughout, each on a new connection; none may fail.
	stop := make(chan struct{})
	var total, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := fresh()
			for {
				select {
				case <-stop:
					return
				default:
				}
				total.Add(1)
				req, _ := http.NewRequest(http.MethodGet, p.URL+"/metrics", nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := c.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	issuer := func() string { return testpki.ServedBy(p.Addr, pool) }
	if got := issuer(); got != "ca-one" {
		t.Fatalf("serving certificate issued by %q", got)
	}
	if code, _ := p.get(t, fresh(client1.TLS()), "/metrics", nil); code != 200 {
		t.Fatalf("client certificate of the first CA: %d", code)
	}

	if err := vol.Update(map[string][]byte{"tls.crt": serving2.CertPEM, "tls.key": serving2.KeyPEM, "ca.crt": ca2.CertPEM}); err != nil {
		t.Fatal(err)
	}
	swapped := time.Now()
	for issuer() != "ca-two" {
		if time.Since(swapped) > 5*time.Second {
			t.Fatal("serving certificate not reloaded within 5s of the ..data swap")
		}
		time.Sleep(100 * time.Millisecond)
	}
	for {
		if code, _ := p.get(t, fresh(client2.TLS()), "/metrics", nil); code == 200 {
			break
		}
		if time.Since(swapped) > 5*time.Second {
			t.Fatal("client CA not reloaded within 5s of the ..data swap")
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("reloaded %v after the swap", time.Since(swapped).Round(100*time.Millisecond))
	if code, _ := p.get(t, fresh(client1.TLS()), "/metrics", nil); code != 401 {
		t.Fatalf("client certificate of the replaced CA: %d, want 401", code)
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || total.Load() < 20 {
		t.Fatalf("%d of %d scrapes failed during the rotation (first: %v)", failed.Load(), total.Load(), firstErr.Load())
	}
	t.Logf("%d scrapes during the rotation, none failed", total.Load())
}

// TestAPIServerOutage: identities decided recently keep working while the
// API server black-holes every connection; unknown ones are refused; no
// request hangs more than a few seconds.
func TestAPIServerOutage(t *testing.T) {
	ns := newNamespace(t)
	allowNonResource(t, saSubject(ns, "known"), "/metrics")
	allowNonResource(t, saSubject(ns, "unknown"), "/metrics")
	waitNonResource(t, saUser(ns, "known"), saGroups(ns), "/metrics")
	waitNonResource(t, saUser(ns, "unknown"), saGroups(ns), "/metrics")
	known, unknown := token(t, ns, "known"), token(t, ns, "unknown")
	pk, up := newPKI(t), newUpstream(t)

	timed := func(t *testing.T, p *proxyProc, tok string) (int, time.Duration) {
		start := time.Now()
		code, _ := p.get(t, pk.client(), "/metrics", bearer(tok))
		return code, time.Since(start)
	}
	t.Run("within the cache TTL", func(t *testing.T) {
		front := newAPIFront(t)
		p := startProxy(t, append(pk.servingFlags(t), "--upstream="+up.url, "--kubeconfig="+front.kubeconfig, "--kube-api-timeout=2s")...)
		if code, _ := timed(t, p, known); code != 200 {
			t.Fatalf("before the outage: %d", code)
		}
		front.setBlackHole(true)
		for range 3 {
			if code, el := timed(t, p, known); code != 200 || el > time.Second {
				t.Fatalf("known identity during the outage: %d after %v", code, el)
			}
		}
		if code, el := timed(t, p, unknown); code != 401 || el > 4*time.Second {
			t.Fatalf("unknown identity during the outage: %d after %v, want 401 within a few seconds", code, el)
		}
	})
	t.Run("stale cache TTL extends it", func(t *testing.T) {
		front := newAPIFront(t)
		ttls := []string{"--authentication-token-webhook-cache-ttl=1s", "--authorization-webhook-cache-authorized-ttl=1s", "--kube-api-timeout=1s"}
		stale := startProxy(t, append(pk.servingFlags(t), append(ttls, "--upstream="+up.url, "--kubeconfig="+front.kubeconfig, "--stale-cache-ttl=1m")...)...)
		plain := startProxy(t, append(pk.servingFlags(t), append(ttls, "--upstream="+up.url, "--kubeconfig="+front.kubeconfig)...)...)
		for _, p := range []*proxyProc{stale, plain} {
			if code, _ := timed(t, p, known); code != 200 {
				t.Fatalf("before the outage: %d", code)
			}
		}
		front.setBlackHole(true)
		time.Sleep(1500 * time.Millisecond) // past both TTLs
		if code, el := timed(t, stale, known); code != 200 || el > 4*time.Second {
			t.Fatalf("with --stale-cache-ttl: %d after %v, want 200", code, el)
		}
		if code, el := timed(t, plain, known); code == 200 || el > 4*time.Second {
			t.Fatalf("without --stale-cache-ttl: %d after %v, want refused", code, el)
		}
		if code, _ := timed(t, stale, unknown); code != 401 {
			t.Fatalf("unknown identity with a stale cache: %d, want 401", code)
		}
	})
}

func TestSlowClientsAndOversizedHeaders(t *testing.T) {
	front, up, pk := newAPIFront(t), newUpstream(t), newPKI(t)
	p := startProxy(t, append(pk.servingFlags(t), "--upstream="+up.url, "--kubeconfig="+front.kubeconfig, "--read-header-timeout=1s", "--max-header-bytes=16384")...)
	t.Run("slow headers are cut off", func(t *testing.T) {
		conn, err := tls.Dial("tcp", p.Addr, &tls.Config{RootCAs: pk.ca.Pool(), NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_, _ = io.WriteString(conn, "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
		start := time.Now()
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.ReadAll(conn)
		if el := time.Since(start); el > 4*time.Second {
			t.Fatalf("a client that never finished its headers was held %v", el)
		}
	})
	t.Run("oversized headers get 431", func(t *testing.T) {
		for _, h2 := range []bool{false, true} {
			c := pk.client()
			if !h2 {
				c.Transport.(*http.Transport).TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
				c.Transport.(*http.Transport).ForceAttemptHTTP2 = false
			}
			req, _ := http.NewRequest(http.MethodGet, p.URL+"/metrics", nil)
			req.Header.Set("X-Big", strings.Repeat("a", 64*1024))
			resp, err := c.Do(req)
			if h2 && err != nil {
				continue // an HTTP/2 server may refuse the header block at the frame level
			}
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
				t.Fatalf("http2=%v: got %d, want 431", h2, resp.StatusCode)
			}
		}
		if up.hits.Load() != 0 {
			t.Fatal("the upstream was reached")
		}
	})
}

func TestEndpointsAndGracefulShutdown(t *testing.T) {
	ns := newNamespace(t)
	allowNonResource(t, saSubject(ns, "reader"), "/metrics")
	waitNonResource(t, saUser(ns, "reader"), saGroups(ns), "/metrics")
	tok := token(t, ns, "reader")
	started := make(chan struct{}, 1)
	slow := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("slow") != "" {
			started <- struct{}{}
			time.Sleep(2 * time.Second)
		}
		_, _ = io.WriteString(w, "done")
	})}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go func() { _ = slow.Serve(ln) }()
	t.Cleanup(func() { _ = slow.Close() })

	front, pk := newAPIFront(t), newPKI(t)
	p := startProxyWith(t, framework.ProxyOptions{Endpoints: true,
		Args: append(pk.servingFlags(t), "--upstream=http://"+ln.Addr().String()+"/", "--kubeconfig="+front.kubeconfig)})
	p.get(t, pk.client(), "/metrics", bearer(tok))
	p.get(t, pk.client(), "/metrics", nil)
	endpoints := fmt.Sprintf("https://127.0.0.1:%d", p.EndpointsPort)
	get := func(path string) (int, string) {
		resp, err := pk.client().Get(endpoints + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body := get(path); code != 200 {
			t.Fatalf("%s: %d %s", path, code, body)
		}
	}
	code, metrics := get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{`rbac_proxy_requests_total{code="200"} 1`, `rbac_proxy_requests_total{code="401"} 1`,
		`rbac_proxy_authentication_total{method="token",result="success"} 1`, `rbac_proxy_authorization_total{result="allowed"} 1`,
		`rbac_proxy_review_duration_seconds_count{result="ok",review="tokenreview"} 1`, `rbac_proxy_upstream_duration_seconds_count{code="200"} 1`,
		`rbac_proxy_review_cache_total{cache="subjectaccessreview",result="miss"} 1`, "process_resident_memory_bytes"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// SIGTERM with a scrape in flight: it completes, then the process exits 0.
	res := make(chan string, 1)
	go func() {
		code, body := p.get(t, pk.client(), "/metrics?slow=1", bearer(tok))
		res <- fmt.Sprintf("%d %s", code, body)
	}()
	<-started
	stopped := make(chan error, 1)
	go func() { stopped <- p.Stop() }()
	if got := <-res; got != "200 done" {
		t.Fatalf("in-flight request during shutdown: %s", got)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, p.Log())
	}
}

func TestBadFlagsExitWithOneLine(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--secure-listen-address=:0", "--upstream=ftp://x"}, `--upstream: Invalid value: "ftp://x": the scheme must be http, https or unix`},
		{[]string{"--secure-listen-address=:0", "--upstream=http://127.0.0.1:1", "--authz=static"}, "--authz"},
		{[]string{"--secure-listen-address=:0", "--upstream=http://127.0.0.1:1", "--resource-attributes=namespace=a,verb=get"}, `unknown key; allowed keys are apigroup, apiversion, name, namespace, resource, subresource`},
		{[]string{"--secure-listen-address=:0", "--upstream=https://10.1.2.3", "--upstream-insecure-skip-verify"}, "loopback"},
		{[]string{"--secure-listen-address=:0", "--upstream=http://127.0.0.1:1", "--allowed-users=a"}, "only valid with --authz=static"},
		{[]string{"--secure-listen-address=:0", "--upstream=http://127.0.0.1:1", "--tls-cert-file=/nope.crt", "--tls-private-key-file=/nope.key"}, "/nope.crt"},
		{[]string{"--no-such-flag"}, "unknown flag: --no-such-flag"},
	} {
		cmd := exec.Command(proxyBin, tc.args...)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Errorf("%v: exit 0", tc.args)
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) != 1 || !strings.Contains(lines[0], tc.want) {
			t.Errorf("%v: output %q, want one line containing %q", tc.args, out, tc.want)
		}
	}
	out, err := exec.Command(proxyBin, "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--authz string") || !strings.Contains(string(out), "--upstream string") {
		t.Errorf("--help: %v\n%s", err, out)
	}
}

func TestTokensNeverLogged(t *testing.T) {
	ns := newNamespace(t)
	allowNonResource(t, saSubject(ns, "reader"), "/metrics")
	waitNonResource(t, saUser(ns, "reader"), saGroups(ns), "/metrics")
	good, bad := token(t, ns, "reader"), "bad-token-that-must-not-be-logged"
	front, up, pk := newAPIFront(t), newUpstream(t), newPKI(t)
	p := startProxy(t, append(pk.servingFlags(t), "--upstream="+up.url, "--kubeconfig="+front.kubeconfig, "-v=10")...)
	for _, tok := range []string{good, bad} {
		p.get(t, pk.client(), "/metrics", bearer(tok))
		p.get(t, pk.client(), "/debug", bearer(tok))
	}
	front.setBlackHole(true)
	p.get(t, pk.client(), "/metrics", bearer("another-unknown-token-not-logged"))
	_ = p.Stop()
	logs := p.Log()
	if !strings.Contains(logs, "proxying") {
		t.Fatalf("expected verbose logs, got:\n%s", logs)
	}
	for _, secret := range []string{good, good[len(good)-20:], bad, "another-unknown-token-not-logged"} {
		if strings.Contains(logs, secret) {
			t.Fatalf("a token appears in the logs")
		}
	}
}
