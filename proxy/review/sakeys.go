package review

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-logr/logr"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"
	"k8s.io/client-go/rest"
)

// IssuerFetcher GETs a path of the API server with the proxy's own
// credentials and returns the body of a 200 answer.
type IssuerFetcher func(ctx context.Context, path string) ([]byte, error)

// The API server's service-account issuer discovery (KEP 1393), readable by
// every ServiceAccount through the system:service-account-issuer-discovery
// binding. The keys are read from the API server itself, not from the
// document's jwks_uri, which names an address for outside clients that the
// proxy may not reach and that may not take its credentials.
const (
	discoveryPath = "/.well-known/openid-configuration"
	jwksPath      = "/openid/v1/jwks"
	// maxDiscoveryBytes bounds either document; a JWKS of a few keys is a
	// few KB.
	maxDiscoveryBytes = 1 << 20
	// unknownKeyRefresh is how often at most a token signed with a key id
	// not in the set makes the keys be read again: a rotated key is picked
	// up within it, and made-up key ids cost the API server one read per
	// interval whatever their number.
	unknownKeyRefresh = 10 * time.Second
	// keysMaxAge is how old the set may get before it is read again in the
	// background, so that a key the issuer withdrew stops being trusted.
	keysMaxAge = 5 * time.Minute
)

// newIssuerFetcher reads the API server at cfg's address over hc, which
// carries cfg's credentials.
func newIssuerFetcher(cfg *rest.Config, hc *http.Client) (IssuerFetcher, error) {
	base, _, err := rest.DefaultServerUrlFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("the API server address: %w", err)
	}
	return func(ctx context.Context, path string) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base.JoinPath(path).String(), nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", "application/json, application/jwk-set+json")
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxDiscoveryBytes+1))
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
		}
		if len(body) > maxDiscoveryBytes {
			return nil, fmt.Errorf("GET %s: more than %d bytes", path, maxDiscoveryBytes)
		}
		return body, nil
	}, nil
}

// issuerKeys is the cluster's service-account issuer and its public keys,
// as the API server last published them. A failed read keeps the last good
// set: an API server outage never drops a key.
type issuerKeys struct {
	fetch   IssuerFetcher
	timeout time.Duration
	log     logr.Logger
	now     func() time.Time
	// unknown limits the reads made because a key id was not in the set.
	unknown *rate.Limiter
	flight  singleflight.Group

	mu      sync.RWMutex
	issuer  string
	keys    jose.JSONWebKeySet
	fetched time.Time // of the set in keys
	raw     []byte    // the set as read
	gen     uint64    // changes with the set
}

func newIssuerKeys(fetch IssuerFetcher, timeout time.Duration, log logr.Logger) *issuerKeys {
	return &issuerKeys{
		fetch:   fetch,
		timeout: timeout,
		log:     log,
		now:     time.Now,
		unknown: rate.NewLimiter(rate.Every(unknownKeyRefresh), 1),
	}
}

// discover reads the issuer and its keys; both must succeed.
func (k *issuerKeys) discover(ctx context.Context) error {
	body, err := k.get(ctx, discoveryPath)
	if err != nil {
		return fmt.Errorf("reading the service-account issuer discovery document: %w", err)
	}
	var doc struct {
		Issuer string `json:"issuer"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || doc.Issuer == "" {
		return fmt.Errorf("the service-account issuer discovery document %s names no issuer (%v)", discoveryPath, err)
	}
	k.mu.Lock()
	k.issuer = doc.Issuer
	k.mu.Unlock()
	return k.refresh()
}

func (k *issuerKeys) get(ctx context.Context, path string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	return k.fetch(ctx, path)
}

// refresh reads the key set again; concurrent callers share one read. The
// read is detached from any request: it outlives the caller that started it.
func (k *issuerKeys) refresh() error {
	_, err, _ := k.flight.Do("jwks", func() (any, error) {
		body, err := k.get(context.Background(), jwksPath)
		if err != nil {
			return nil, fmt.Errorf("reading the service-account keys: %w", err)
		}
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(body, &set); err != nil {
			return nil, fmt.Errorf("the service-account keys %s: %w", jwksPath, err)
		}
		var keys []jose.JSONWebKey
		for _, key := range set.Keys {
			// The set carries public verification keys only; anything else
			// is not for us (and a private key there is not ours to use).
			if key.Valid() && key.IsPublic() && (key.Use == "" || key.Use == "sig") {
				keys = append(keys, key)
			}
		}
		if len(keys) == 0 {
			return nil, errors.New("the service-account key set holds no public signing key")
		}
		k.mu.Lock()
		k.keys, k.fetched = jose.JSONWebKeySet{Keys: keys}, k.now()
		if !bytes.Equal(body, k.raw) {
			k.raw = body
			k.gen++
		}
		k.mu.Unlock()
		return nil, nil
	})
	if err != nil {
		k.log.Error(err, "keeping the last service-account key set")
	}
	return err
}

// generation changes each time the key set read differs from the last.
func (k *issuerKeys) generation() uint64 {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.gen
}

// Issuer is the discovered issuer.
func (k *issuerKeys) Issuer() string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.issuer
}

// lookup returns the keys a token signed with key id kid may be verified
// with: that key, or every key when the token names none. An unknown key id
// has the set read again, at most once per unknownKeyRefresh; a set older
// than keysMaxAge is read again in the background.
func (k *issuerKeys) lookup(kid string) []jose.JSONWebKey {
	keys, fetched := k.find(kid)
	if len(keys) == 0 && k.unknown.Allow() {
		_ = k.refresh()
		keys, fetched = k.find(kid)
	}
	if k.now().Sub(fetched) > keysMaxAge && k.unknown.Allow() {
		go func() { _ = k.refresh() }() // a failure is logged; the current set stays
	}
	return keys
}

func (k *issuerKeys) find(kid string) ([]jose.JSONWebKey, time.Time) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if kid == "" {
		return k.keys.Keys, k.fetched
	}
	return k.keys.Key(kid), k.fetched
}
