package proxy

import (
	"crypto/sha256"
	"crypto/x509"
	"net/http"
	"sync"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"
)

// certCacheTTL bounds how long a verified client certificate chain is
// trusted without verifying it again (a CA change takes effect at once: the
// pool is part of the key).
const certCacheTTL = 5 * time.Minute

// cachedCertAuthenticator remembers verified client certificate chains, so
// that the signature checks run once per chain and CA rather than once per
// request (every request on a keep-alive connection presents the same chain).
type cachedCertAuthenticator struct {
	verify authenticator.Request // the apiserver x509 authenticator
	pool   func() *x509.CertPool // the current client CA
	max    int
	now    func() time.Time

	mu      sync.RWMutex
	entries map[certKey]certEntry
}

type certKey struct {
	pool  *x509.CertPool
	chain [sha256.Size]byte
}

type certEntry struct {
	resp    *authenticator.Response
	expires time.Time
}

func newCachedCertAuthenticator(verify authenticator.Request, pool func() *x509.CertPool, max int) *cachedCertAuthenticator {
	return &cachedCertAuthenticator{verify: verify, pool: pool, max: max, now: time.Now, entries: map[certKey]certEntry{}}
}

// AuthenticateRequest implements authenticator.Request.
func (c *cachedCertAuthenticator) AuthenticateRequest(r *http.Request) (*authenticator.Response, bool, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil, false, nil
	}
	h := sha256.New()
	for _, cert := range r.TLS.PeerCertificates {
		h.Write(cert.Raw)
	}
	key := certKey{pool: c.pool()}
	h.Sum(key.chain[:0])
	now := c.now()

	c.mu.RLock()
	e, ok := c.entries[key]
	c.mu.RUnlock()
	if ok && now.Before(e.expires) {
		return e.resp, true, nil
	}
	resp, ok, err := c.verify.AuthenticateRequest(r)
	if !ok || err != nil {
		return resp, ok, err
	}
	expires := now.Add(certCacheTTL)
	for _, cert := range r.TLS.PeerCertificates {
		if cert.NotAfter.Before(expires) {
			expires = cert.NotAfter
		}
	}
	c.mu.Lock()
	if len(c.entries) >= c.max {
		for k := range c.entries { // evict an arbitrary entry
			delete(c.entries, k)
			break
		}
	}
	c.entries[key] = certEntry{resp: resp, expires: expires}
	c.mu.Unlock()
	return resp, true, nil
}
