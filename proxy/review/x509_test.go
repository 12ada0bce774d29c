package review

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"

	"github.com/rbac-proxy/rbac-proxy/internal/testpki"
)

type countingAuthenticator struct {
	inner authenticator.Request
	calls atomic.Int64
}

func (c *countingAuthenticator) AuthenticateRequest(r *http.Request) (*authenticator.Response, bool, error) {
	c.calls.Add(1)
	return c.inner.AuthenticateRequest(r)
}

func TestClientCertificateVerificationCached(t *testing.T) {
	ca1, _ := testpki.NewCA("one")
	ca2, _ := testpki.NewCA("two")
	var current atomic.Pointer[x509.CertPool]
	current.Store(ca1.Pool())
	clock := &fakeClock{t: time.Now()}
	c := newCertAuthenticator(current.Load, 10, clock)
	counter := &countingAuthenticator{inner: c.verify}
	c.verify = counter

	request := func(pair testpki.Pair) *http.Request {
		cert := pair.TLS()
		leaf, _ := x509.ParseCertificate(cert.Certificate[0])
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}
		return r
	}
	alice, _ := ca1.Client("alice", "team")
	bob, _ := ca1.Client("bob")
	for range 5 {
		resp, ok, err := c.AuthenticateRequest(request(alice))
		if !ok || err != nil || resp.User.GetName() != "alice" || resp.User.GetGroups()[0] != "team" {
			t.Fatalf("alice: %v %v %+v", ok, err, resp)
		}
	}
	if n := counter.calls.Load(); n != 1 {
		t.Fatalf("%d verifications for one certificate, want 1", n)
	}
	if _, ok, _ := c.AuthenticateRequest(request(bob)); !ok || counter.calls.Load() != 2 {
		t.Fatalf("another certificate must be verified on its own")
	}
	clock.step(certCacheTTL + time.Second)
	c.AuthenticateRequest(request(alice))
	if n := counter.calls.Load(); n != 3 {
		t.Fatalf("%d verifications after the TTL, want 3", n)
	}
	// A new CA applies at once: the cached chain is verified again, and fails.
	current.Store(ca2.Pool())
	if _, ok, _ := c.AuthenticateRequest(request(alice)); ok {
		t.Fatal("certificate of the replaced CA still accepted")
	}
	// Failures are not cached.
	rogue, _ := ca2.Client("eve")
	current.Store(ca1.Pool())
	for range 2 {
		if _, ok, _ := c.AuthenticateRequest(request(rogue)); ok {
			t.Fatal("untrusted certificate accepted")
		}
	}
	if n := counter.calls.Load(); n != 6 {
		t.Fatalf("%d verifications, want 6", n)
	}
}

// BenchmarkClientCertificate: what the cache of verified chains saves on
// every request of a keep-alive connection that presents a certificate.
func BenchmarkClientCertificate(b *testing.B) {
	ca, _ := testpki.NewCA("bench")
	pair, _ := ca.Client("scraper", "monitoring")
	cert := pair.TLS()
	leaf, _ := x509.ParseCertificate(cert.Certificate[0])
	r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}
	pool := ca.Pool()
	c := newCertAuthenticator(func() *x509.CertPool { return pool }, 10, &fakeClock{t: time.Now()})
	for _, v := range []struct {
		name string
		a    authenticator.Request
	}{{"cached", c}, {"verified each time", c.verify}} {
		b.Run(v.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok, err := v.a.AuthenticateRequest(r); !ok || err != nil {
					b.Fatal(ok, err)
				}
			}
		})
	}
}
