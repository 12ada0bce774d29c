package review

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// lookup says how a cached review was answered.
type lookup string

const (
	lookupHit       lookup = "hit"       // a fresh cached result
	lookupMiss      lookup = "miss"      // this caller made the review
	lookupCoalesced lookup = "coalesced" // another caller's review, in flight, was shared
	lookupStale     lookup = "stale"     // the review failed; an expired result was used
)

// reviewCache caches the results of a review (TokenReview or
// SubjectAccessReview) by key. Concurrent misses on one key share a single
// review; results live for a TTL chosen per result, shortened at random by up
// to a tenth (see jittered); when a review fails, an expired result is still
// used within staleTTL past its expiry.
//
// Negative results (a rejected token, a denial) are kept apart from the
// others, each set bounded by max on its own: anyone can make rejections by
// the thousand with made-up tokens, and they must never push a caller's
// cached identity out.
//
// It is written here rather than taken from k8s.io/apiserver's token cache
// (token/cache) or apimachinery's LRUExpireCache because both drop a result
// when its TTL ends: --stale-cache-ttl needs an expired result while the API
// server cannot answer, and tokenAdmission needs to know that a token whose
// result expired succeeded before (known). The token cache also keeps one
// set for successes and rejections, unbounded (--cache-max-entries would not
// hold, and rejections would share the successes' room), and gives its
// shared review a fixed 30 s rather than --kube-api-timeout. One cache serves
// both reviews, so that coalescing, the review deadline and the stale window
// are written once. Its keys are the token's SHA-256 (the token itself is
// never kept) and the review's attributes (sarKey); the token cache's keyed
// HMAC also protects its FNV-striped buckets from chosen collisions, which
// Go's maps, seeded per process, do not need.
type reviewCache[V any] struct {
	ttl      func(V) time.Duration
	staleTTL time.Duration
	timeout  time.Duration
	max      int
	now      func() time.Time
	// rand draws the jitter, uniform in [0, 1).
	rand func() float64
	// negative says which results go to the negative set; nil: none.
	negative func(V) bool

	mu      sync.RWMutex
	entries map[string]cacheEntry[V] // positive results
	denied  map[string]cacheEntry[V] // negative results
	flight  singleflight.Group
}

type cacheEntry[V any] struct {
	value   V
	expires time.Time
}

func newReviewCache[V any](ttl func(V) time.Duration, staleTTL, timeout time.Duration, max int) *reviewCache[V] {
	return &reviewCache[V]{
		ttl:      ttl,
		staleTTL: staleTTL,
		timeout:  timeout,
		max:      max,
		now:      time.Now,
		rand:     rand.Float64,
		entries:  make(map[string]cacheEntry[V]),
		denied:   make(map[string]cacheEntry[V]),
	}
}

// fresh returns the cached result for key if it has not expired.
func (c *reviewCache[V]) fresh(key string) (V, bool) {
	if e, found := c.entry(key); found && c.now().Before(e.expires) {
		return e.value, true
	}
	var zero V
	return zero, false
}

// known reports whether key has a positive result, expired or not (until it
// is evicted).
func (c *reviewCache[V]) known(key string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	_, found := c.entries[key]
	return found
}

// get returns the result for key, calling review on a miss. The review runs
// with its own deadline (the cache's timeout), detached from the caller's
// cancellation so that callers sharing it are not failed by the first one
// leaving; the caller itself stops waiting when its context ends.
func (c *reviewCache[V]) get(ctx context.Context, key string, review func(context.Context) (V, error)) (V, lookup, error) {
	if v, ok := c.fresh(key); ok {
		return v, lookupHit, nil
	}

	ch := c.flight.DoChan(key, func() (any, error) {
		// A caller that missed just as another flight for key ended starts
		// a flight of its own; that flight's result is already stored.
		if v, ok := c.fresh(key); ok {
			return v, nil
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
		defer cancel()
		v, err := review(rctx)
		if err != nil {
			return v, err
		}
		if ttl := c.ttl(v); ttl > 0 {
			c.store(key, v, c.now().Add(c.jittered(ttl)))
		}
		return v, nil
	})

	var res singleflight.Result
	select {
	case res = <-ch:
	case <-ctx.Done():
		var zero V
		return zero, lookupMiss, ctx.Err()
	}
	how := lookupMiss
	if res.Shared {
		how = lookupCoalesced
	}
	if res.Err != nil {
		// The API server could not answer: fall back on an expired result
		// if it is still within the stale window.
		if e, found := c.entry(key); found && c.staleTTL > 0 && c.now().Before(e.expires.Add(c.staleTTL)) {
			return e.value, lookupStale, nil
		}
		var zero V
		return zero, how, res.Err
	}
	return res.Val.(V), how, nil
}

// jitterFraction is the most a result's TTL is shortened by, at random.
const jitterFraction = 0.1

// jittered is ttl × [0.9, 1.0), uniformly: proxies restarted together (a
// rollout, a node pool's reboot) make their first reviews together, and with
// a fixed TTL would make every later one together too, a burst each TTL for
// as long as they run. Shortening by up to a tenth spreads the expiries of
// one identity over a tenth of the TTL from the first renewal on, and the
// spread grows with each renewal (a random walk) until they are uniform over
// the TTL. The TTL is never lengthened: it stays the most a result is
// trusted.
func (c *reviewCache[V]) jittered(ttl time.Duration) time.Duration {
	return ttl - time.Duration(c.rand()*jitterFraction*float64(ttl))
}

func (c *reviewCache[V]) entry(key string) (cacheEntry[V], bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if e, found := c.entries[key]; found {
		return e, true
	}
	e, found := c.denied[key]
	return e, found
}

// store inserts an entry into its set (positive or negative), evicting to
// keep that set within max entries: first dead entries (past expiry and
// stale window) among a small sample, otherwise an arbitrary one. Eviction
// is O(1) amortized.
func (c *reviewCache[V]) store(key string, v V, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	set, other := c.entries, c.denied
	if c.negative != nil && c.negative(v) {
		set, other = c.denied, c.entries
	}
	delete(other, key)
	if _, exists := set[key]; !exists && len(set) >= c.max {
		now := c.now()
		evicted := false
		sampled := 0
		var victim string
		for k, e := range set {
			if !now.Before(e.expires.Add(c.staleTTL)) {
				delete(set, k)
				evicted = true
			}
			if victim == "" {
				victim = k
			}
			if sampled++; sampled >= 16 {
				break
			}
		}
		if !evicted {
			delete(set, victim)
		}
	}
	set[key] = cacheEntry[V]{value: v, expires: expires}
}

// len is the number of entries, positive and negative (for tests).
func (c *reviewCache[V]) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries) + len(c.denied)
}
