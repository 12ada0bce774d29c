package review

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
	authnv1 "k8s.io/api/authentication/v1"

	"github.com/rbac-proxy/rbac-proxy/proxy/internal/fakeapi"
)

func TestPlausibleToken(t *testing.T) {
	for _, tc := range []struct {
		name  string
		token string
		ok    bool
	}{
		{"empty", "", false},
		{"one byte", "a", true},
		{"ServiceAccount JWT", "eyJhbGciOiJSUzI1NiIsImtpZCI6IngifQ.eyJzdWIiOiJ4In0.c2ln", true},
		{"bootstrap token", "abcdef.0123456789abcdef", true},
		{"static token with symbols", `x!"#$%&'()*+,-./:;<=>?@[\]^_{|}~`, true},
		{"16 KiB", strings.Repeat("a", 16<<10), true},
		{"16 KiB and one", strings.Repeat("a", 16<<10+1), false},
		{"a control byte", "tok\x01en", false},
		{"DEL", "tok\x7fen", false},
		{"a tab", "tok\ten", false},
		{"a space", "tok en", false},
		{"non-ASCII", "tökén", false},
	} {
		if got := plausibleToken(tc.token); got != tc.ok {
			t.Errorf("%s: plausible=%v, want %v", tc.name, got, tc.ok)
		}
	}
}

func TestBearerToken(t *testing.T) {
	for _, tc := range []struct {
		header string
		token  string // "": none
	}{
		{"Bearer abc", "abc"},
		{"bearer abc", "abc"},
		{"BEARER abc", "abc"},
		{"  Bearer abc  ", "abc"},
		{"Bearer abc def", "abc"},
		{"Bearer  abc", ""},
		{"Bearer", ""},
		{"Bearer ", ""},
		{"Basic YTpi", ""},
		{"Bearerabc", ""},
	} {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", tc.header)
		got, ok := bearerToken(r)
		if ok != (tc.token != "") || got != tc.token {
			t.Errorf("%q: got %q %v, want %q", tc.header, got, ok, tc.token)
		}
	}
}

// TestRejectionsDoNotEvictIdentities: made-up tokens fill the cache with
// rejections; a cached identity stays cached.
func TestRejectionsDoNotEvictIdentities(t *testing.T) {
	api := fakeapi.New(t)
	api.AddToken("good", authnv1.UserInfo{Username: "alice"})
	cc := testCache()
	cc.MaxEntries = 10
	a := newTokenAuthenticator(clientsOf(t, api).Tokens, nil, cc, 3*time.Second, newMetrics(nil))
	ctx := context.Background()
	if _, ok, _ := a.AuthenticateToken(ctx, "good"); !ok {
		t.Fatal("good token refused")
	}
	for i := range 100 {
		if _, ok, _ := a.AuthenticateToken(ctx, fmt.Sprint("bad-", i)); ok {
			t.Fatal("bad token accepted")
		}
	}
	before := api.TokenReviews.Load()
	if _, ok, _ := a.AuthenticateToken(ctx, "good"); !ok || api.TokenReviews.Load() != before {
		t.Fatalf("good token after 100 rejections: ok=%v, %d new reviews (evicted)", ok, api.TokenReviews.Load()-before)
	}
}

// grantOrder starts one waiter per entry (in that order, each queued before
// the next) and returns the order in which they were granted. The first
// takes the limiter's burst; no turn comes by itself afterwards (the
// limiter refills once an hour and no dispatcher is started): the test
// serves the turns, one at a time, each once the last one's waiter has
// returned, so the order is the queue's and not how fast the machine runs
// goroutines.
func grantOrder(t *testing.T, a *tokenAdmission, entries []struct {
	addr  string
	known bool
}) ([]int, []error) {
	t.Helper()
	a.limiter.SetLimit(rate.Every(time.Hour))
	a.mu.Lock()
	a.running = true
	a.mu.Unlock()
	errs := make([]error, len(entries))
	decided := make(chan int, len(entries))
	var ndecided atomic.Int64
	for i, en := range entries {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			errs[i] = a.admit(ctx, netip.MustParseAddr(en.addr), en.known)
			ndecided.Add(1)
			decided <- i
		}()
		// Wait until it is queued (or decided), so that arrival order is fixed.
		for a.queued()+int(ndecided.Load()) < i+1 {
			time.Sleep(time.Millisecond)
		}
	}
	var order []int
	take := func() {
		if i := <-decided; errs[i] == nil {
			order = append(order, i)
		}
	}
	for range ndecided.Load() { // at once: the burst, or refused
		take()
	}
	for a.queued() > 0 {
		a.mu.Lock()
		w := a.popLocked()
		if w == nil {
			a.mu.Unlock()
			t.Fatalf("%d waiting, none served", a.queued())
		}
		w.granted = true
		close(w.ready)
		a.mu.Unlock()
		take()
	}
	return order, errs
}

func TestAdmissionOrder(t *testing.T) {
	type entry = struct {
		addr  string
		known bool
	}
	for _, tc := range []struct {
		name     string
		rejected []string
		entries  []entry
		want     []int // the first takes the burst; the others wait their turn
	}{
		{"least used address first, newest among equals, first come first served within one", nil,
			[]entry{{"10.0.0.9", false}, {"10.0.0.1", false}, {"10.0.0.1", false}, {"10.0.0.1", false}, {"10.0.0.2", false}, {"10.0.0.3", false}},
			[]int{0, 5, 4, 1, 2, 3}},
		{"known tokens first, rejections count", []string{"10.0.0.1"},
			[]entry{{"10.0.0.9", false}, {"10.0.0.1", false}, {"10.0.0.2", false}, {"10.0.0.1", true}, {"10.0.0.3", false}},
			[]int{0, 3, 4, 2, 1}},
		{"an IPv6 /64 is one client", nil,
			[]entry{{"10.0.0.9", false}, {"2001:db8::1", false}, {"2001:db8::2", false}, {"2001:db8:1::1", false}},
			[]int{0, 3, 1, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newTokenAdmission(50, 1, 3*time.Second)
			for _, s := range tc.rejected {
				a.rejected(clientKey(s + ":1"))
			}
			for i := range tc.entries {
				tc.entries[i].addr = clientKey(netip.AddrPortFrom(netip.MustParseAddr(tc.entries[i].addr), 1).String()).String()
			}
			order, errs := grantOrder(t, a, tc.entries)
			for i, err := range errs {
				if err != nil {
					t.Fatalf("waiter %d: %v", i, err)
				}
			}
			if fmt.Sprint(order) != fmt.Sprint(tc.want) {
				t.Fatalf("granted in order %v, want %v", order, tc.want)
			}
		})
	}
}

// TestAdmissionUseWindows: an address's use is what it presented in the
// current and the previous window; older use is forgotten.
func TestAdmissionUseWindows(t *testing.T) {
	a := newTokenAdmission(1, 1, 3*time.Second)
	clock := &fakeClock{t: time.Unix(3000, 0)}
	a.now = clock.Now
	addr := netip.MustParseAddr("10.0.0.1")
	a.rejected(addr)
	a.mu.Lock()
	a.chargeLocked(addr, attemptCost, clock.Now())
	a.mu.Unlock()
	use := func() int { a.mu.Lock(); defer a.mu.Unlock(); return a.useLocked(addr, clock.Now()) }
	if u := use(); u != attemptCost+rejectionCost {
		t.Fatalf("use %d, want %d", u, attemptCost+rejectionCost)
	}
	clock.step(admissionWindow)
	if u := use(); u != attemptCost+rejectionCost {
		t.Fatalf("one window later: use %d, want it kept", u)
	}
	clock.step(admissionWindow)
	if u := use(); u != 0 {
		t.Fatalf("two windows later: use %d, want 0", u)
	}
}

func TestAdmissionLimits(t *testing.T) {
	t.Run("per address", func(t *testing.T) {
		a := newTokenAdmission(1, 1, 3*time.Second)
		a.perAddr = 2
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		addr := netip.MustParseAddr("10.0.0.1")
		if err := a.admit(ctx, addr, false); err != nil { // the burst
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() { defer wg.Done(); _ = a.admit(ctx, addr, false) }()
		}
		for a.queued() < 2 {
			time.Sleep(time.Millisecond)
		}
		if err := a.admit(ctx, addr, false); !refusedAtOnce(err) {
			t.Fatalf("third waiter of one address: %v, want refused at once", err)
		}
		if err := a.admit(ctx, netip.MustParseAddr("10.0.0.2"), false); !errors.Is(err, errThrottled) {
			t.Fatalf("another address, no turn before the deadline: %v, want throttled", err)
		}
		wg.Wait()
		if n := a.queued(); n != 0 {
			t.Fatalf("%d still queued after every deadline passed", n)
		}
	})
	t.Run("a less used address pushes out a busier one", func(t *testing.T) {
		a := newTokenAdmission(1, 1, 3*time.Second)
		a.max = 2
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = a.admit(ctx, netip.MustParseAddr("10.0.0.9"), false) // the burst
		busy := netip.MustParseAddr("10.0.0.1")
		a.rejected(busy)
		errs := make(chan error, 2)
		for range 2 {
			go func() { errs <- a.admit(ctx, busy, false) }()
		}
		for a.queued() < 2 {
			time.Sleep(time.Millisecond)
		}
		fresh := make(chan error, 1)
		go func() { fresh <- a.admit(ctx, netip.MustParseAddr("10.0.0.2"), false) }()
		if err := <-errs; !errors.Is(err, errThrottled) {
			t.Fatalf("a waiter of the busy address: %v, want pushed out", err)
		}
		if err := a.admit(ctx, busy, false); !refusedAtOnce(err) {
			t.Fatalf("the busy address again, the queue full: %v, want refused at once", err)
		}
		if err := <-fresh; err != nil {
			t.Fatalf("the fresh caller: %v", err)
		}
	})
	t.Run("a known token pushes out any other", func(t *testing.T) {
		a := newTokenAdmission(1, 1, 3*time.Second)
		a.max = 1
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = a.admit(ctx, netip.MustParseAddr("10.0.0.9"), false) // the burst
		other := make(chan error, 1)
		go func() { other <- a.admit(ctx, netip.MustParseAddr("10.0.0.1"), false) }()
		for a.queued() < 1 {
			time.Sleep(time.Millisecond)
		}
		known := make(chan error, 1)
		go func() { known <- a.admit(ctx, netip.MustParseAddr("10.0.0.1"), true) }()
		if err := <-other; !errors.Is(err, errThrottled) {
			t.Fatalf("the unknown token's waiter: %v, want pushed out", err)
		}
		if err := <-known; err != nil {
			t.Fatalf("the known token: %v", err)
		}
	})
	t.Run("the queue holds what the budget serves before the deadline", func(t *testing.T) {
		for _, tc := range []struct {
			qps      float64
			deadline time.Duration
			want     int
		}{{25, 3 * time.Second, 75}, {1, time.Second, admissionMinMax}, {1000, 10 * time.Second, admissionMaxMax}} {
			if got := newTokenAdmission(tc.qps, 1, tc.deadline).max; got != tc.want {
				t.Errorf("%v/s for %v: %d may wait, want %d", tc.qps, tc.deadline, got, tc.want)
			}
		}
	})
	t.Run("no wait when idle", func(t *testing.T) {
		// One turn an hour after the burst, and a context already done: a
		// review that waited for a turn would fail.
		a := newTokenAdmission(1.0/3600, 10, 3*time.Second)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		for i := range 10 {
			if err := a.admit(ctx, netip.MustParseAddr("10.0.0.1"), false); err != nil {
				t.Fatalf("review %d within the burst: %v", i, err)
			}
		}
		if err := a.admit(ctx, netip.MustParseAddr("10.0.0.1"), false); !errors.Is(err, context.Canceled) {
			t.Fatalf("the 11th review, past the burst: %v, want it to wait (and give up)", err)
		}
	})
}

// refusedAtOnce: err is a refusal that did not wait for a turn (a full
// address or queue), rather than a wait that ended at the deadline.
func refusedAtOnce(err error) bool {
	return errors.Is(err, errThrottled) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) &&
		(strings.HasSuffix(err.Error(), "from this client address") || strings.HasSuffix(err.Error(), "in all"))
}

func TestClientKey(t *testing.T) {
	for _, tc := range []struct{ remote, want string }{
		{"10.1.2.3:4567", "10.1.2.3"},
		{"[::ffff:10.1.2.3]:4567", "10.1.2.3"},
		{"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::"},
		{"[fe80::1%eth0]:443", "fe80::"},
		{"@", "invalid IP"},
	} {
		if got := clientKey(tc.remote).String(); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.remote, got, tc.want)
		}
	}
}
