package review

import (
	"crypto/sha256"
	"crypto/x509"
	"net/http"
	"time"

	utilcache "k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	apix509 "k8s.io/apiserver/pkg/authentication/request/x509"
)

// certCacheTTL bounds how long a verified client certificate chain is
// trusted without verifying it again (a CA change takes effect at once: the
// pool is part of the key).
const certCacheTTL = 5 * time.Minute

// certAuthenticator is k8s.io/apiserver's x509 authenticator (user from the
// common name, groups from the organizations) against the current client CA,
// with the chains it verified remembered in apimachinery's LRUExpireCache:
// the signature checks then run once per chain and CA rather than once per
// request, as every request on a keep-alive connection presents the same
// chain. Failures are not remembered.
type certAuthenticator struct {
	verify authenticator.Request
	pool   func() *x509.CertPool // the current client CA
	clock  utilcache.Clock
	cache  *utilcache.LRUExpireCache // certKey → *authenticator.Response
}

type certKey struct {
	pool  *x509.CertPool
	chain [sha256.Size]byte
}

// newCertAuthenticator verifies client certificates against pool, which
// the caller keeps current.
func newCertAuthenticator(pool func() *x509.CertPool, max int, clock utilcache.Clock) *certAuthenticator {
	opts := func() (x509.VerifyOptions, bool) {
		p := pool()
		if p == nil {
			return x509.VerifyOptions{}, false
		}
		return x509.VerifyOptions{Roots: p, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, true
	}
	return &certAuthenticator{
		verify: apix509.NewDynamic(opts, apix509.CommonNameUserConversion),
		pool:   pool,
		clock:  clock,
		cache:  utilcache.NewLRUExpireCacheWithClock(max, clock),
	}
}

// AuthenticateRequest implements authenticator.Request.
func (c *certAuthenticator) AuthenticateRequest(r *http.Request) (*authenticator.Response, bool, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil, false, nil
	}
	h := sha256.New()
	for _, cert := range r.TLS.PeerCertificates {
		h.Write(cert.Raw)
	}
	key := certKey{pool: c.pool()}
	h.Sum(key.chain[:0])
	if resp, ok := c.cache.Get(key); ok {
		return resp.(*authenticator.Response), true, nil
	}
	resp, ok, err := c.verify.AuthenticateRequest(r)
	if !ok || err != nil {
		return resp, ok, err
	}
	ttl := certCacheTTL
	now := c.clock.Now()
	for _, cert := range r.TLS.PeerCertificates {
		ttl = min(ttl, cert.NotAfter.Sub(now))
	}
	if ttl > 0 {
		c.cache.Add(key, resp, ttl)
	}
	return resp, true, nil
}
