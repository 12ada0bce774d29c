package review

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
	"github.com/rbac-proxy/rbac-proxy/proxy/internal/fakeapi"
)

func testCache() config.CacheConfig {
	return config.CacheConfig{TokenSuccessTTL: time.Minute, TokenFailureTTL: 10 * time.Second, AuthorizedTTL: time.Minute, UnauthorizedTTL: 10 * time.Second, MaxEntries: 100}
}

// fakeClock is a settable clock for cache TTL tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) step(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestTokenReviewsCoalesced(t *testing.T) {
	api := fakeapi.New(t)
	api.AddToken("tok", authnv1.UserInfo{Username: "alice", Groups: []string{"g"}})
	api.Delay = 100 * time.Millisecond // keep the first review in flight while the others arrive
	a := newTokenAuthenticator(clientsOf(t, api).Tokens, nil, testCache(), 3*time.Second, newMetrics(nil))

	var wg sync.WaitGroup
	var ok atomic.Int64
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, authenticated, err := a.AuthenticateToken(context.Background(), "tok")
			if err == nil && authenticated && resp.User.GetName() == "alice" {
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 50 {
		t.Fatalf("%d of 50 authenticated", ok.Load())
	}
	if n := api.TokenReviews.Load(); n != 1 {
		t.Fatalf("%d TokenReviews for 50 concurrent requests with one token, want 1", n)
	}
	// Cached afterwards.
	for range 10 {
		if _, ok, _ := a.AuthenticateToken(context.Background(), "tok"); !ok {
			t.Fatal("not authenticated from cache")
		}
	}
	if n := api.TokenReviews.Load(); n != 1 {
		t.Fatalf("%d TokenReviews after cached lookups, want 1", n)
	}
}

func TestTokenCacheTTLs(t *testing.T) {
	api := fakeapi.New(t)
	api.AddToken("good", authnv1.UserInfo{Username: "alice"})
	clock := &fakeClock{t: time.Unix(1000, 0)}
	a := newTokenAuthenticator(clientsOf(t, api).Tokens, nil, testCache(), 3*time.Second, newMetrics(nil))
	a.cache.now = clock.Now
	ctx := context.Background()

	mustAuth := func(token string, want bool) {
		t.Helper()
		_, ok, err := a.AuthenticateToken(ctx, token)
		if err != nil || ok != want {
			t.Fatalf("token %q: ok=%v err=%v, want ok=%v", token, ok, err, want)
		}
	}
	mustAuth("good", true)
	mustAuth("bad", false)
	mustAuth("good", true)
	mustAuth("bad", false)
	if n := api.TokenReviews.Load(); n != 2 {
		t.Fatalf("%d reviews, want 2 (both results cached)", n)
	}
	clock.step(11 * time.Second) // failure TTL over, success TTL not
	mustAuth("good", true)
	mustAuth("bad", false)
	if n := api.TokenReviews.Load(); n != 3 {
		t.Fatalf("%d reviews, want 3 (failure re-reviewed)", n)
	}
	clock.step(time.Minute) // success TTL over
	mustAuth("good", true)
	if n := api.TokenReviews.Load(); n != 5-1 {
		t.Fatalf("%d reviews, want 4", n)
	}
}

func TestTokenAudiences(t *testing.T) {
	api := fakeapi.New(t)
	api.AddToken("tok", authnv1.UserInfo{Username: "alice"})
	api.Audiences = []string{"metrics"}
	good := newTokenAuthenticator(clientsOf(t, api).Tokens, []string{"metrics"}, testCache(), 3*time.Second, newMetrics(nil))
	if _, ok, err := good.AuthenticateToken(context.Background(), "tok"); !ok || err != nil {
		t.Fatalf("token with the right audience refused: %v", err)
	}
	bad := newTokenAuthenticator(clientsOf(t, api).Tokens, []string{"other"}, testCache(), 3*time.Second, newMetrics(nil))
	if _, ok, _ := bad.AuthenticateToken(context.Background(), "tok"); ok {
		t.Fatal("token for another audience accepted")
	}
}

func TestOutageServesCacheThenStale(t *testing.T) {
	api := fakeapi.New(t)
	api.AddToken("known", authnv1.UserInfo{Username: "alice"})
	clock := &fakeClock{t: time.Unix(1000, 0)}
	cc := testCache()
	cc.StaleTTL = 5 * time.Minute
	a := newTokenAuthenticator(clientsOf(t, api).Tokens, nil, cc, 3*time.Second, newMetrics(nil))
	a.cache.now = clock.Now
	ctx := context.Background()

	if _, ok, _ := a.AuthenticateToken(ctx, "known"); !ok {
		t.Fatal("known token refused")
	}
	api.Down.Store(true)
	if _, ok, err := a.AuthenticateToken(ctx, "known"); !ok || err != nil {
		t.Fatalf("within TTL during outage: ok=%v err=%v", ok, err)
	}
	if _, ok, err := a.AuthenticateToken(ctx, "unknown"); ok || err == nil {
		t.Fatalf("unknown token during outage: ok=%v err=%v, want refused with an error", ok, err)
	}
	clock.step(2 * time.Minute) // past the 1m TTL, within the stale window
	if _, ok, err := a.AuthenticateToken(ctx, "known"); !ok || err != nil {
		t.Fatalf("within stale window during outage: ok=%v err=%v", ok, err)
	}
	clock.step(5 * time.Minute) // past the stale window
	if _, ok, _ := a.AuthenticateToken(ctx, "known"); ok {
		t.Fatal("accepted past the stale window")
	}
	// Without a stale TTL an expired entry is not used.
	cc.StaleTTL = 0
	b := newTokenAuthenticator(clientsOf(t, api).Tokens, nil, cc, 3*time.Second, newMetrics(nil))
	b.cache.now = clock.Now
	api.Down.Store(false)
	if _, ok, _ := b.AuthenticateToken(ctx, "known"); !ok {
		t.Fatal("known token refused")
	}
	api.Down.Store(true)
	clock.step(2 * time.Minute)
	if _, ok, _ := b.AuthenticateToken(ctx, "known"); ok {
		t.Fatal("expired entry used without --stale-cache-ttl")
	}
}

func TestSARCoalescedAndCached(t *testing.T) {
	api := fakeapi.New(t)
	api.Delay = 100 * time.Millisecond
	api.SetAllow(func(s authzv1.SubjectAccessReviewSpec) bool {
		return s.User == "alice" && s.NonResourceAttributes != nil && s.NonResourceAttributes.Path == "/metrics"
	})
	clock := &fakeClock{t: time.Unix(1000, 0)}
	s := newSARAuthorizer(clientsOf(t, api).Access, testCache(), 3*time.Second, newMetrics(nil))
	s.cache.now = clock.Now
	alice := &user.DefaultInfo{Name: "alice", Groups: []string{"g"}, Extra: map[string][]string{"k": {"v"}}}
	attrs := authorizer.AttributesRecord{User: alice, Verb: "get", Path: "/metrics"}

	var wg sync.WaitGroup
	var allowed atomic.Int64
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if d, _, err := s.Authorize(context.Background(), attrs); err == nil && d == authorizer.DecisionAllow {
				allowed.Add(1)
			}
		}()
	}
	wg.Wait()
	if allowed.Load() != 50 || api.SARs.Load() != 1 {
		t.Fatalf("allowed %d/50 with %d SARs, want 50 with 1", allowed.Load(), api.SARs.Load())
	}
	got := api.LastSAR.Load()
	if got.User != "alice" || got.Groups[0] != "g" || got.Extra["k"][0] != "v" || got.NonResourceAttributes.Verb != "get" {
		t.Fatalf("SAR spec %+v", got)
	}

	// A different path is a different review, denied and cached for the deny TTL.
	other := authorizer.AttributesRecord{User: alice, Verb: "get", Path: "/debug"}
	for range 3 {
		if d, _, _ := s.Authorize(context.Background(), other); d == authorizer.DecisionAllow {
			t.Fatal("/debug allowed")
		}
	}
	if api.SARs.Load() != 2 {
		t.Fatalf("%d SARs, want 2", api.SARs.Load())
	}
	clock.step(11 * time.Second)
	_, _, _ = s.Authorize(context.Background(), other)
	_, _, _ = s.Authorize(context.Background(), attrs)
	if api.SARs.Load() != 3 {
		t.Fatalf("%d SARs, want 3: deny TTL over, allow TTL not", api.SARs.Load())
	}
}

func TestSARKeyDistinguishesAttributes(t *testing.T) {
	u := func(name string, groups ...string) user.Info { return &user.DefaultInfo{Name: name, Groups: groups} }
	attrs := []authorizer.AttributesRecord{
		{User: u("a"), Verb: "get", Path: "/metrics"},
		{User: u("a", "g"), Verb: "get", Path: "/metrics"},
		{User: u("a", "g", "h"), Verb: "get", Path: "/metrics"},
		{User: u("a", "gh"), Verb: "get", Path: "/metrics"},
		{User: u("a"), Verb: "create", Path: "/metrics"},
		{User: u("a"), Verb: "get", Path: "/metricsx"},
		{User: u("a:1"), Verb: "get", Path: "/metrics"},
		{User: &user.DefaultInfo{Name: "a", Extra: map[string][]string{"k": {"v"}}}, Verb: "get", Path: "/metrics"},
		{User: u("a"), Verb: "get", Resource: "services", ResourceRequest: true},
		{User: u("a"), Verb: "get", Resource: "services", Namespace: "x", ResourceRequest: true},
		{User: u("a"), Verb: "get", Resource: "servicesx", ResourceRequest: true},
	}
	seen := map[string]int{}
	for i, a := range attrs {
		k := sarKey(a)
		if j, dup := seen[k]; dup {
			t.Errorf("attributes %d and %d share key %q", j, i, k)
		}
		seen[k] = i
	}
}

func TestCacheBounded(t *testing.T) {
	c := newReviewCache(func(int) time.Duration { return time.Hour }, 0, time.Second, 10)
	for i := range 100 {
		if _, _, err := c.get(context.Background(), fmt.Sprint(i), func(context.Context) (int, error) { return i, nil }); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.len(); n > 10 {
		t.Fatalf("%d entries, want at most 10", n)
	}
}

func TestCacheCallerCancellationDoesNotFailOthers(t *testing.T) {
	c := newReviewCache(func(int) time.Duration { return time.Hour }, 0, 5*time.Second, 10)
	release := make(chan struct{})
	var calls atomic.Int64
	review := func(ctx context.Context) (int, error) {
		calls.Add(1)
		select {
		case <-release:
			return 42, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	ctx1, cancel1 := context.WithCancel(context.Background())
	errs := make(chan error, 2)
	go func() { _, _, err := c.get(ctx1, "k", review); errs <- err }()
	time.Sleep(50 * time.Millisecond)
	go func() {
		v, _, err := c.get(context.Background(), "k", review)
		if err == nil && v != 42 {
			err = fmt.Errorf("got %d", v)
		}
		errs <- err
	}()
	time.Sleep(50 * time.Millisecond)
	cancel1()
	if err := <-errs; !errors.Is(err, context.Canceled) {
		t.Fatalf("first caller: %v, want canceled", err)
	}
	close(release)
	if err := <-errs; err != nil {
		t.Fatalf("second caller failed after the first left: %v", err)
	}
	if calls.Load() != 1 {
		t.Fatalf("%d reviews, want 1", calls.Load())
	}
}

func TestCacheTimeoutBoundsReview(t *testing.T) {
	c := newReviewCache(func(int) time.Duration { return time.Hour }, 0, 200*time.Millisecond, 10)
	start := time.Now()
	_, _, err := c.get(context.Background(), "k", func(ctx context.Context) (int, error) {
		<-ctx.Done()
		return 0, ctx.Err()
	})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Fatalf("err=%v after %v, want deadline exceeded after ~200ms", err, time.Since(start))
	}
}

// TestCacheMissesAfterAFlightEndsShareItsResult: callers that find no entry
// just as the flight for their key ends must not start a second review.
// The window is small, so many bursts of fast reviews are tried.
func TestCacheMissesAfterAFlightEndsShareItsResult(t *testing.T) {
	for burst := range 200 {
		c := newReviewCache(func(int) time.Duration { return time.Hour }, 0, time.Second, 10)
		var reviews atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, _, _ = c.get(context.Background(), "k", func(context.Context) (int, error) { return int(reviews.Add(1)), nil })
			}()
		}
		close(start)
		wg.Wait()
		if n := reviews.Load(); n != 1 {
			t.Fatalf("burst %d: %d reviews for one key, want 1", burst, n)
		}
	}
}

// clientsOf returns the clients of the fake API.
func clientsOf(t *testing.T, api *fakeapi.API) Clients {
	tokens, access := api.Clients(t)
	return Clients{Tokens: tokens, Access: access}
}

// TestCacheExpiryJittered starts a fleet of 1,000 caches at one instant (a
// restart) and shows where their one result expires: within [0.9, 1.0) of
// the TTL, never later, and spread evenly over that tenth rather than all at
// once.
func TestCacheExpiryJittered(t *testing.T) {
	const (
		fleet   = 1000
		ttl     = 2 * time.Minute
		buckets = 10
	)
	start := time.Unix(1000, 0)
	src := rand.New(rand.NewPCG(1, 2))
	var hist [buckets]int
	lo, hi := ttl, time.Duration(0)
	for range fleet {
		c := newReviewCache(func(int) time.Duration { return ttl }, 0, time.Second, 10)
		c.now = func() time.Time { return start }
		c.rand = src.Float64
		if _, _, err := c.get(context.Background(), "k", func(context.Context) (int, error) { return 1, nil }); err != nil {
			t.Fatal(err)
		}
		life := c.entries["k"].expires.Sub(start)
		lo, hi = min(lo, life), max(hi, life)
		if life < ttl*9/10 || life >= ttl {
			t.Fatalf("a result lives %v, want within [%v, %v)", life, ttl*9/10, ttl)
		}
		hist[int((life-ttl*9/10)*buckets/(ttl/10))]++
	}
	t.Logf("%d results expire between %v and %v; per %v: %v", fleet, lo, hi, ttl/10/buckets, hist)
	for i, n := range hist {
		// Uniform: 100 a bucket; 60 is more than 4 standard deviations below.
		if n < 60 || n > 140 {
			t.Fatalf("bucket %d holds %d of %d expiries, want about %d: %v", i, n, fleet, fleet/buckets, hist)
		}
	}
	if spread := hi - lo; spread < ttl/10*9/10 {
		t.Fatalf("expiries spread over %v, want nearly %v", spread, ttl/10)
	}
}
