package review

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// errThrottled: the review of an unknown token was not sent, because its
// client address already had too many waiting, all queues were full, or its
// turn did not come before the request's deadline.
var errThrottled = errors.New("too many TokenReviews waiting")

// tokenAdmission decides when the TokenReview of a token that is not cached
// is sent. Tokens cost the proxy nothing to invent, and each unknown one
// costs an API call, so these reviews get a budget of their own (a
// rate.Limiter; SubjectAccessReviews have another, see reviewBudgets) and,
// when it runs short, the waiting reviews are served in this order:
//
//  1. Tokens the proxy has seen succeed before (their cache entry expired):
//     a caller keeps its identity past the TTL even under a flood. Only a
//     holder of a once-valid token gets here.
//  2. Every other review by the recent use of its client address (IPv4
//     address, IPv6 /64): each unknown token an address presents counts 1,
//     each rejected or malformed one 4 more, over the last one to two
//     windows of 30 s. The least used address goes first; among equals, the
//     one that started waiting last (its waiter is the likeliest to make its
//     deadline; the others have waited for as long already). Within one
//     address, first come first served.
//
// So a flood of made-up tokens, from one address or three hundred, runs up
// its own addresses' counts, and a new caller elsewhere, whose count is 1,
// is served at the next turn of the budget. At most perAddr reviews wait
// per address, and in all no more than the budget can serve before their
// deadline (rate × --kube-api-timeout): a longer queue would only hold
// connections for reviews that time out, and a flood that keeps thousands
// of requests waiting would fill --max-connections. Beyond, the waiter that
// would be served last is pushed out if the newcomer would be served before
// it, or else the newcomer is refused at once (no API call; a 401).
//
// When nothing waits, a review goes at once if the limiter allows it: a
// quiet proxy adds no latency. The rate is x/time/rate's; what is written
// here is only the ordering of waiters, which neither x/time/rate nor
// client-go's flowcontrol (a single FIFO token bucket, in which a flood is
// served before whoever comes after it) provides, and the API server's
// fair queuing (k8s.io/apiserver/pkg/util/flowcontrol) is built for its
// own request classification, not for a queue in front of a client.
type tokenAdmission struct {
	limiter *rate.Limiter
	perAddr int
	max     int
	window  time.Duration
	now     func() time.Time

	mu      sync.Mutex
	known   []*admissionWaiter            // order 1, first come first served
	flows   map[netip.Addr]*admissionFlow // order 2, by address
	waiting int
	running bool // a dispatcher goroutine is running
	usage   map[netip.Addr]*addrUsage
}

// Defaults of tokenAdmission; see newTokenAdmission.
const (
	admissionPerAddr = 8
	admissionMinMax  = 8
	admissionMaxMax  = 1024
	admissionWindow  = 30 * time.Second
	maxTrackedAddrs  = 4096
	attemptCost      = 1 // an unknown token presented
	rejectionCost    = 4 // more, when it is rejected or malformed
)

type admissionFlow struct {
	addr    netip.Addr
	waiters []*admissionWaiter
}

type admissionWaiter struct {
	flow    *admissionFlow // nil for a known token
	since   time.Time
	ready   chan struct{} // closed on a decision
	granted bool          // the decision: go (or pushed out)
}

// addrUsage counts an address's recent unknown tokens in fixed windows:
// its use is the count of the current window plus the previous one.
type addrUsage struct {
	win       int64
	cur, prev int
}

// newTokenAdmission admits up to qps reviews a second with bursts of
// burst, for requests that wait at most deadline.
func newTokenAdmission(qps float64, burst int, deadline time.Duration) *tokenAdmission {
	return &tokenAdmission{
		limiter: rate.NewLimiter(rate.Limit(qps), max(burst, 1)),
		perAddr: admissionPerAddr,
		max:     min(max(int(math.Ceil(qps*deadline.Seconds())), admissionMinMax), admissionMaxMax),
		window:  admissionWindow,
		now:     time.Now,
		flows:   map[netip.Addr]*admissionFlow{},
		usage:   map[netip.Addr]*addrUsage{},
	}
}

// admit returns when the review of a token presented from addr may be sent,
// or errThrottled. known: the token succeeded before.
func (a *tokenAdmission) admit(ctx context.Context, addr netip.Addr, known bool) error {
	a.mu.Lock()
	now := a.now()
	if !known {
		a.chargeLocked(addr, attemptCost, now)
	}
	if a.waiting == 0 && a.limiter.Allow() {
		a.mu.Unlock()
		return nil
	}
	w := &admissionWaiter{since: now, ready: make(chan struct{})}
	var f *admissionFlow
	if !known {
		f = a.flows[addr]
		if f != nil && len(f.waiters) >= a.perAddr {
			a.mu.Unlock()
			return fmt.Errorf("%w: %d from this client address", errThrottled, a.perAddr)
		}
	}
	if a.waiting >= a.max && !a.pushOutLocked(addr, known, now) {
		a.mu.Unlock()
		return fmt.Errorf("%w: %d in all", errThrottled, a.max)
	}
	if known {
		a.known = append(a.known, w)
	} else {
		if f == nil {
			f = &admissionFlow{addr: addr}
			a.flows[addr] = f
		}
		w.flow = f
		f.waiters = append(f.waiters, w)
	}
	a.waiting++
	if !a.running {
		a.running = true
		go a.dispatch()
	}
	a.mu.Unlock()

	select {
	case <-w.ready:
	case <-ctx.Done():
		a.mu.Lock()
		select {
		case <-w.ready: // decided meanwhile
		default:
			a.removeLocked(w)
			a.mu.Unlock()
			return fmt.Errorf("%w: no turn before the deadline: %w", errThrottled, ctx.Err())
		}
		a.mu.Unlock()
	}
	if !w.granted {
		return fmt.Errorf("%w: pushed out by a less busy client address", errThrottled)
	}
	return nil
}

// dispatch hands out the limiter's tokens, one per waiter in order, until
// nobody waits.
func (a *tokenAdmission) dispatch() {
	for {
		a.mu.Lock()
		if a.waiting == 0 {
			a.running = false
			a.mu.Unlock()
			return
		}
		a.mu.Unlock()
		r := a.limiter.Reserve()
		if d := r.Delay(); d > 0 {
			time.Sleep(d)
		}
		a.mu.Lock()
		if w := a.popLocked(); w != nil {
			w.granted = true
			close(w.ready)
		} else {
			r.Cancel() // everyone left while we waited
		}
		a.mu.Unlock()
	}
}

// before reports whether flow f is served before flow g.
func (a *tokenAdmission) before(f, g *admissionFlow, now time.Time) bool {
	uf, ug := a.useLocked(f.addr, now), a.useLocked(g.addr, now)
	if uf != ug {
		return uf < ug
	}
	return f.waiters[0].since.After(g.waiters[0].since)
}

// popLocked takes the next waiter.
func (a *tokenAdmission) popLocked() *admissionWaiter {
	if len(a.known) > 0 {
		w := a.known[0]
		a.known[0] = nil
		a.known = a.known[1:]
		a.waiting--
		return w
	}
	now := a.now()
	var best *admissionFlow
	for _, f := range a.flows {
		if best == nil || a.before(f, best, now) {
			best = f
		}
	}
	if best == nil {
		return nil
	}
	w := best.waiters[0]
	a.removeLocked(w)
	return w
}

// pushOutLocked refuses the waiter that would be served last, if a
// newcomer from addr (of a known token, or not) would be served before it.
func (a *tokenAdmission) pushOutLocked(addr netip.Addr, known bool, now time.Time) bool {
	var worst *admissionFlow
	for _, f := range a.flows {
		if worst == nil || a.before(worst, f, now) {
			worst = f
		}
	}
	if worst == nil { // all known: first come first served
		return false
	}
	if !known {
		if worst.addr == addr { // its own waiters come first
			return false
		}
		newcomer := &admissionFlow{addr: addr, waiters: []*admissionWaiter{{since: now}}}
		if !a.before(newcomer, worst, now) {
			return false
		}
	}
	w := worst.waiters[len(worst.waiters)-1]
	a.removeLocked(w)
	close(w.ready) // not granted
	return true
}

// removeLocked takes w out of its queue.
func (a *tokenAdmission) removeLocked(w *admissionWaiter) {
	q := &a.known
	if w.flow != nil {
		q = &w.flow.waiters
	}
	for i, x := range *q {
		if x == w {
			*q = append((*q)[:i], (*q)[i+1:]...)
			a.waiting--
			break
		}
	}
	if w.flow != nil && len(w.flow.waiters) == 0 {
		delete(a.flows, w.flow.addr)
	}
}

// chargeLocked adds n to addr's recent use.
func (a *tokenAdmission) chargeLocked(addr netip.Addr, n int, now time.Time) {
	u := a.usage[addr]
	if u == nil {
		if len(a.usage) >= maxTrackedAddrs {
			a.forgetOneLocked(now)
		}
		u = &addrUsage{}
		a.usage[addr] = u
	}
	a.rollLocked(u, now)
	u.cur += n
}

// useLocked is addr's recent use.
func (a *tokenAdmission) useLocked(addr netip.Addr, now time.Time) int {
	u := a.usage[addr]
	if u == nil {
		return 0
	}
	a.rollLocked(u, now)
	return u.cur + u.prev
}

func (a *tokenAdmission) rollLocked(u *addrUsage, now time.Time) {
	w := now.UnixNano() / int64(a.window)
	switch {
	case w == u.win:
	case w == u.win+1:
		u.win, u.prev, u.cur = w, u.cur, 0
	default:
		u.win, u.prev, u.cur = w, 0, 0
	}
}

// forgetOneLocked drops the least used of a few tracked addresses that
// have nothing waiting.
func (a *tokenAdmission) forgetOneLocked(now time.Time) {
	var victim netip.Addr
	least, sampled := -1, 0
	for addr := range a.usage {
		if _, waiting := a.flows[addr]; waiting {
			continue
		}
		if use := a.useLocked(addr, now); least < 0 || use < least {
			victim, least = addr, use
		}
		if sampled++; sampled >= 16 {
			break
		}
	}
	if least >= 0 {
		delete(a.usage, victim)
	}
}

// rejected counts against addr a token that was rejected, or could not be
// a token at all.
func (a *tokenAdmission) rejected(addr netip.Addr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.chargeLocked(addr, rejectionCost, a.now())
}

// queued is the number of reviews waiting (for the metric).
func (a *tokenAdmission) queued() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.waiting
}

// clientKey is the address a client is counted under: its IPv4 address, or
// its IPv6 /64 (one host can use a whole /64, so finer keys would let it
// appear as many clients).
func clientKey(remoteAddr string) netip.Addr {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return netip.Addr{} // no IP (a unix socket): one shared key
	}
	ip := ap.Addr().Unmap().WithZone("")
	if ip.Is6() {
		if p, err := ip.Prefix(64); err == nil {
			return p.Addr()
		}
	}
	return ip
}
