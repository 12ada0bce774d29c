package proxy

import (
	"context"
	"errors"
	"fmt"
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
// rate.Limiter; SubjectAccessReviews have another, see reviewBudgets) and
// are served fairly when it runs short:
//
//   - Three tiers, each served before the next: tokens the proxy has seen
//     succeed before (their cache entry expired: a caller keeps its identity
//     past the TTL even under a flood), then client addresses with no
//     recent rejection, then suspects — addresses that presented a rejected
//     or malformed token in the last suspectFor. A flood of made-up tokens
//     makes its addresses suspects after their first rejection, whether it
//     comes from one address or three hundred, and a new caller elsewhere
//     overtakes all of it.
//   - Within a tier, round robin over client addresses (IPv4 addresses,
//     IPv6 /64s), first come first served within one address, at most
//     perAddr waiting per address and max in all; beyond, a waiter of a
//     lower tier is pushed out, or else the newcomer is refused at once (no
//     API call, a 401).
//
// When nothing waits, a review goes at once if the limiter allows it: a
// quiet proxy adds no latency. The rate itself is x/time/rate's; what is
// written here is only the ordering of waiters, which neither x/time/rate
// nor client-go's flowcontrol (a single FIFO token bucket: the flood is
// served before the caller who came after it) provides, and the
// API server's fair queuing (k8s.io/apiserver/pkg/util/flowcontrol) is
// built for its own request classification, not for a queue in a client.
type tokenAdmission struct {
	limiter    *rate.Limiter
	perAddr    int
	max        int
	suspectFor time.Duration
	now        func() time.Time

	mu       sync.Mutex
	tiers    [tierCount]admissionTier
	waiting  int
	running  bool                     // a dispatcher goroutine is running
	suspects map[netip.Addr]time.Time // address → suspect until
}

const (
	tierKnown   = iota // a token that succeeded before
	tierFresh          // an address without recent rejections
	tierSuspect        // an address with a recent rejection
	tierCount
)

// Defaults of tokenAdmission; see newTokenAdmission.
const (
	admissionPerAddr    = 8
	admissionMax        = 1024
	admissionSuspectFor = time.Minute
	maxSuspects         = 4096
)

type admissionTier struct {
	flows map[netip.Addr]*admissionFlow
	ring  []*admissionFlow // flows with waiters, in turn order
	next  int              // index into ring of the next turn
}

type admissionFlow struct {
	addr    netip.Addr
	tier    int
	waiters []*admissionWaiter
}

type admissionWaiter struct {
	flow    *admissionFlow
	ready   chan struct{} // closed on a decision
	granted bool          // the decision: go (or pushed out)
}

// newTokenAdmission admits up to qps reviews a second with bursts of
// burst.
func newTokenAdmission(qps float64, burst int) *tokenAdmission {
	a := &tokenAdmission{
		limiter:    rate.NewLimiter(rate.Limit(qps), max(burst, 1)),
		perAddr:    admissionPerAddr,
		max:        admissionMax,
		suspectFor: admissionSuspectFor,
		now:        time.Now,
		suspects:   map[netip.Addr]time.Time{},
	}
	for i := range a.tiers {
		a.tiers[i].flows = map[netip.Addr]*admissionFlow{}
	}
	return a
}

// admit returns when the review may be sent, or errThrottled.
func (a *tokenAdmission) admit(ctx context.Context, addr netip.Addr, known bool) error {
	a.mu.Lock()
	if a.waiting == 0 && a.limiter.Allow() {
		a.mu.Unlock()
		return nil
	}
	t := a.tierLocked(addr, known)
	tier := &a.tiers[t]
	f := tier.flows[addr]
	if f != nil && len(f.waiters) >= a.perAddr {
		a.mu.Unlock()
		return fmt.Errorf("%w: %d from this client address", errThrottled, a.perAddr)
	}
	if a.waiting >= a.max && !a.pushOutLocked(t) {
		a.mu.Unlock()
		return fmt.Errorf("%w: %d in all", errThrottled, a.max)
	}
	if f == nil {
		f = &admissionFlow{addr: addr, tier: t}
		tier.flows[addr] = f
		tier.ring = append(tier.ring, f)
	}
	w := &admissionWaiter{flow: f, ready: make(chan struct{})}
	f.waiters = append(f.waiters, w)
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
		return fmt.Errorf("%w: pushed out by a caller of a higher tier", errThrottled)
	}
	return nil
}

// dispatch hands out the limiter's tokens, one per waiter in turn, until
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

// tierLocked is the tier of a review.
func (a *tokenAdmission) tierLocked(addr netip.Addr, known bool) int {
	if known {
		return tierKnown
	}
	if until, ok := a.suspects[addr]; ok {
		if a.now().Before(until) {
			return tierSuspect
		}
		delete(a.suspects, addr)
	}
	return tierFresh
}

// popLocked takes the next waiter: the highest tier with waiters, the next
// address in turn there, its oldest waiter.
func (a *tokenAdmission) popLocked() *admissionWaiter {
	for t := range a.tiers {
		tier := &a.tiers[t]
		if len(tier.ring) == 0 {
			continue
		}
		if tier.next >= len(tier.ring) {
			tier.next = 0
		}
		i := tier.next
		f := tier.ring[i]
		w := f.waiters[0]
		f.waiters[0] = nil
		f.waiters = f.waiters[1:]
		a.waiting--
		if len(f.waiters) == 0 {
			a.dropFlowLocked(f, i)
		} else {
			tier.next = i + 1
		}
		return w
	}
	return nil
}

// pushOutLocked refuses the newest waiter of the longest queue in the
// lowest tier below t, to make room for a caller of tier t.
func (a *tokenAdmission) pushOutLocked(t int) bool {
	for u := tierCount - 1; u > t; u-- {
		var longest *admissionFlow
		for _, f := range a.tiers[u].ring {
			if longest == nil || len(f.waiters) > len(longest.waiters) {
				longest = f
			}
		}
		if longest == nil {
			continue
		}
		w := longest.waiters[len(longest.waiters)-1]
		a.removeLocked(w)
		close(w.ready) // not granted
		return true
	}
	return false
}

// removeLocked takes w out of its queue.
func (a *tokenAdmission) removeLocked(w *admissionWaiter) {
	f := w.flow
	for i, x := range f.waiters {
		if x == w {
			f.waiters = append(f.waiters[:i], f.waiters[i+1:]...)
			a.waiting--
			break
		}
	}
	if len(f.waiters) == 0 {
		ring := a.tiers[f.tier].ring
		for i, x := range ring {
			if x == f {
				a.dropFlowLocked(f, i)
				break
			}
		}
	}
}

// dropFlowLocked removes the empty flow f, at index i of its tier's ring.
func (a *tokenAdmission) dropFlowLocked(f *admissionFlow, i int) {
	tier := &a.tiers[f.tier]
	copy(tier.ring[i:], tier.ring[i+1:])
	tier.ring[len(tier.ring)-1] = nil
	tier.ring = tier.ring[:len(tier.ring)-1]
	if i < tier.next {
		tier.next--
	}
	delete(tier.flows, f.addr)
}

// rejected marks addr a suspect: it presented a token that was rejected or
// could not be a token at all.
func (a *tokenAdmission) rejected(addr netip.Addr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.suspects[addr]; !ok && len(a.suspects) >= maxSuspects {
		now := a.now()
		sampled := 0
		for k, until := range a.suspects {
			if !now.Before(until) || sampled >= 16 {
				delete(a.suspects, k)
				break
			}
			sampled++
		}
	}
	a.suspects[addr] = a.now().Add(a.suspectFor)
}

// accepted clears addr's suspicion: it presented a valid new token.
func (a *tokenAdmission) accepted(addr netip.Addr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.suspects, addr)
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
