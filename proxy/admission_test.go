package proxy

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"

	"github.com/rbac-proxy/rbac-proxy/proxy/internal/fakeapi"
)

// clientFrom is e.client() dialling from a loopback source address, so that
// tests can play several client addresses.
func (e *testEnv) clientFrom(ip string, certs ...tls.Certificate) *http.Client {
	c := e.client(certs...)
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	c.Transport.(*http.Transport).DialContext = d.DialContext
	return c
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// TestTokenFloodDoesNotStarveOthers: while one client address floods the
// proxy with made-up tokens, new callers elsewhere are authenticated, a
// cached identity (even on the flooding address) is never refused, an
// identity whose cache entry expired keeps working, and a client
// certificate's SubjectAccessReview does not wait behind the TokenReviews.
// It asserts answers, not times: a caller queued behind the flood is not
// slow but refused (its review gets no turn within --kube-api-timeout), and
// the machine may be busy with other tests.
func TestTokenFloodDoesNotStarveOthers(t *testing.T) {
	api := fakeapi.New(t)
	api.SetAllow(func(s authzv1.SubjectAccessReviewSpec) bool { return !strings.HasPrefix(s.User, "flood") })
	for _, name := range []string{"cached", "expiring", "new-0", "new-1", "new-2", "new-3", "new-4"} {
		api.AddToken(name+"-token", authnv1.UserInfo{Username: name})
	}
	e := newTestEnv(t)
	// 4 API calls a second in all: 2 for TokenReviews, 2 for SARs.
	e.start(nil, "--kubeconfig="+api.Kubeconfig(t), e.clientCAFlag(), "--kube-api-qps=4", "--kube-api-burst=4", "--kube-api-timeout=2s",
		"--authentication-token-webhook-cache-ttl=2s")
	get := func(c *http.Client, path string, h http.Header) (int, time.Duration) {
		start := time.Now()
		req, _ := http.NewRequest(http.MethodGet, e.base+path, nil)
		req.Header = h
		resp, err := c.Do(req)
		if err != nil {
			return 0, time.Since(start)
		}
		resp.Body.Close()
		return resp.StatusCode, time.Since(start)
	}
	flooder := e.clientFrom("127.0.0.2")
	for _, tok := range []string{"cached-token", "expiring-token"} {
		if code, _ := get(flooder, "/metrics", bearer(tok)); code != 200 {
			t.Fatalf("%s before the flood: %d", tok, code)
		}
	}
	warmedAt := time.Now()

	// The flood: 30 clients on one address, each a new made-up token every
	// 50 ms (600 a second, 300 times the TokenReview budget), for 4 s.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var sent atomic.Int64
	for range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := e.clientFrom("127.0.0.2")
			for {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				get(c, "/metrics", bearer(randomToken()))
				sent.Add(1)
			}
		}()
	}
	t.Cleanup(func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	})
	time.Sleep(500 * time.Millisecond) // the flood is on
	reviewsBefore := api.TokenReviews.Load()

	var mu sync.Mutex
	var failures []string
	fail := func(f string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		failures = append(failures, fmt.Sprintf(f, args...))
	}
	// A cached identity on the flooding address, all along.
	cachedDone := make(chan struct{})
	go func() {
		defer close(cachedDone)
		c := e.clientFrom("127.0.0.2")
		for time.Since(warmedAt) < 1800*time.Millisecond { // within its 2s TTL
			if code, el := get(c, "/metrics", bearer("cached-token")); code != 200 {
				fail("cached identity: %d after %v", code, el)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	// New callers, each from an address of its own.
	for i := range 5 {
		c := e.clientFrom(fmt.Sprintf("127.0.1.%d", i+1))
		if code, el := get(c, "/metrics", bearer(fmt.Sprintf("new-%d-token", i))); code != 200 {
			fail("new caller %d: %d after %v", i, code, el)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A client certificate on a path whose SAR is not cached.
	cert, _ := e.ca.Client("scraper")
	if code, el := get(e.clientFrom("127.0.1.10", cert.TLS()), "/metrics/gpu", nil); code != 200 {
		fail("client certificate, new SAR: %d after %v", code, el)
	}
	<-cachedDone
	// An identity whose cache entry expired during the flood.
	time.Sleep(time.Until(warmedAt.Add(2100 * time.Millisecond)))
	if code, el := get(e.clientFrom("127.0.1.20"), "/metrics", bearer("expiring-token")); code != 200 {
		fail("expired identity: %d after %v", code, el)
	}
	close(stop)
	wg.Wait()
	reviews := api.TokenReviews.Load() - reviewsBefore
	t.Logf("%d made-up tokens sent; %d TokenReviews while the flood ran", sent.Load(), reviews)
	for _, f := range failures {
		t.Error(f)
	}
}

// TestMalformedTokensMakeNoReview: a token no authenticator could accept is
// refused without an API call, over the wire.
func TestMalformedTokensMakeNoReview(t *testing.T) {
	api := fakeapi.New(t)
	e := newTestEnv(t)
	e.start(api)
	c := e.client()
	for _, tok := range []string{strings.Repeat("a", 17<<10), "tök", "a\tb"} {
		if code, _ := e.get(c, "/metrics", bearer(tok)); code != 401 {
			t.Errorf("token of %d bytes: %d, want 401", len(tok), code)
		}
	}
	if n := api.TokenReviews.Load(); n != 0 {
		t.Fatalf("%d TokenReviews for malformed tokens, want 0", n)
	}
	if code, _ := e.get(c, "/metrics", bearer("plausible-but-unknown")); code != 401 || api.TokenReviews.Load() != 1 {
		t.Fatalf("a plausible token: %d with %d reviews, want 401 after one review", code, api.TokenReviews.Load())
	}
}
