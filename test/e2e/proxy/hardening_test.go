package proxy_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// clientFrom is a client of the test CA that dials from a loopback source
// address, so that one test plays many client addresses. Keep-alives are
// off when fresh: every request is a new connection, as a flood of new
// clients is.
func (p *pki) clientFrom(ip string, fresh bool) *http.Client {
	c := p.client()
	tr := c.Transport.(*http.Transport)
	tr.DialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}).DialContext
	tr.DisableKeepAlives = fresh
	c.Timeout = 30 * time.Second
	return c
}

// loopback returns the n-th address of 127.b.0.0/16 (n from 1).
func loopback(b, n int) string { return fmt.Sprintf("127.%d.%d.%d", b, n/250, n%250+1) }

// do sends GET path with h and reads the answer; it never fails the test,
// so goroutines may call it.
func do(c *http.Client, base, path string, h http.Header) (int, error) {
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header = h
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}

func randomBearer() http.Header {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return bearer(hex.EncodeToString(b))
}

// reviewRecorder stands between the proxy and the API front and notes when
// each TokenReview arrived and which of the watched tokens it reviews.
type reviewRecorder struct {
	watched [][]byte
	mu      sync.Mutex
	seen    []reviewSeen
}

type reviewSeen struct {
	at, done time.Time
	token    int  // index in watched; -1: another token
	cut      bool // the proxy gave up on it before the API server answered
}

// newReviewRecorder forwards to front and returns a kubeconfig for itself.
func newReviewRecorder(t *testing.T, front *apiFront, watched []string) (*reviewRecorder, string) {
	r := &reviewRecorder{}
	for _, w := range watched {
		r.watched = append(r.watched, []byte(w))
	}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: front.ln.Addr().String()})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.HasSuffix(req.URL.Path, "/tokenreviews") {
			body, err := io.ReadAll(req.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			req.Body = io.NopCloser(bytes.NewReader(body))
			s := reviewSeen{at: time.Now(), token: r.find(body)}
			rp.ServeHTTP(w, req)
			s.done, s.cut = time.Now(), req.Context().Err() != nil
			r.mu.Lock()
			r.seen = append(r.seen, s)
			r.mu.Unlock()
			return
		}
		rp.ServeHTTP(w, req)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return r, writeKubeconfigTo(t, "http://"+ln.Addr().String())
}

// find is the index of the watched token that body reviews (it is there
// verbatim, as JSON or protobuf), or -1.
func (r *reviewRecorder) find(body []byte) int {
	for i, w := range r.watched {
		if bytes.Contains(body, w) {
			return i
		}
	}
	return -1
}

// reviews returns what was seen so far.
func (r *reviewRecorder) reviews() []reviewSeen {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]reviewSeen(nil), r.seen...)
}

// TestTokenFloodDoesNotStarveRealCallers is the attack report's item 4 on
// the real API server: 300 clients, each from an address of its own and on
// a new connection each time, send made-up bearer tokens as fast as they
// are answered (as a load tool with 300 connections does), against the
// proxy's TokenReview budget of 25 a second (the default 50 QPS, halved).
// Once every flood address has been answered at least once (before that, a
// flood address has presented as few tokens as a new caller, and the queue
// cannot tell them apart), 40 ServiceAccounts present their new tokens, one
// every 300 ms, each from its own address; and 3 cached identities scrape
// every 250 ms, their cache entries expiring every 5 s.
//
// What the admission promises, and is asserted, does not depend on how fast
// the machine is: every new token's TokenReview is sent (a new address goes
// ahead of every flood address, and is never pushed out by one) and the
// token accepted; no cached identity is ever refused; the API server
// receives no more TokenReviews than the budget allows. The API server
// shares the machine with the flood and answers a review in seconds when
// it is loaded, which is not the queue's doing: --kube-api-timeout is 10 s
// here, not 3 s, so that its slowness does not refuse anyone. Arrival order
// (a FIFO) would refuse the new tokens, the queue being full of the flood's;
// no budget would let the flood's TokenReviews through. Latencies depend on
// the machine (the flood's TLS handshakes fill the CPU) and are only logged,
// next to the flood's own, measured in the same run.
func TestTokenFloodDoesNotStarveRealCallers(t *testing.T) {
	const (
		attackers      = 300
		newCallers     = 40
		newEvery       = 300 * time.Millisecond
		cachedCount    = 3
		cachedEvery    = 250 * time.Millisecond
		budget         = 25 // TokenReviews a second
		burst          = 50
		kubeAPITimeout = 10 * time.Second
	)
	ctx := context.Background()
	ns := newNamespace(t)
	allowNonResource(t, rbacv1.Subject{Kind: "Group", APIGroup: "rbac.authorization.k8s.io", Name: "system:serviceaccounts:" + ns}, "/metrics")
	names := make([]string, 0, newCallers+cachedCount)
	for i := range newCallers + cachedCount {
		name := fmt.Sprintf("scraper-%d", i)
		if _, err := cp.Clientset.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	waitNonResource(t, saUser(ns, names[0]), saGroups(ns), "/metrics")
	tokens := make([]string, len(names))
	for i, name := range names {
		tokens[i] = token(t, ns, name)
	}
	newTokens, cachedTokens := tokens[:newCallers], tokens[newCallers:]

	front, up, pk := newAPIFront(t), newUpstream(t), newPKI(t)
	rec, kubeconfig := newReviewRecorder(t, front, newTokens)
	p := startProxy(t, append(pk.servingFlags(t), "--upstream="+up.url, "--kubeconfig="+kubeconfig,
		"--authentication-token-webhook-cache-ttl=5s", "--kube-api-timeout="+kubeAPITimeout.String())...)
	for i, tok := range cachedTokens {
		if code, _ := p.get(t, pk.clientFrom(loopback(5, i+1), false), "/metrics", bearer(tok)); code != 200 {
			t.Fatalf("cached identity %d before the flood: %d", i, code)
		}
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var sent, answered atomic.Int64
	answeredBy := make([]atomic.Int64, attackers)
	var floodTook atomic.Int64 // nanoseconds, over the answered requests
	floodStart := time.Now()
	trBefore, _ := front.reviews()
	for i := range attackers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := pk.clientFrom(loopback(2, i+1), true)
			for {
				select {
				case <-stop:
					return
				default:
				}
				sent.Add(1)
				start := time.Now()
				if _, err := do(c, p.URL, "/metrics", randomBearer()); err == nil {
					floodTook.Add(int64(time.Since(start)))
					answered.Add(1)
					answeredBy[i].Add(1)
				}
			}
		}()
	}
	stopFlood := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}
	t.Cleanup(stopFlood)

	// The flood is on once every flood address has been answered.
	for waited := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		quiet := 0
		for i := range answeredBy {
			if answeredBy[i].Load() == 0 {
				quiet++
			}
		}
		if quiet == 0 {
			t.Logf("every flood address answered at least once after %v", time.Since(waited).Round(10*time.Millisecond))
			break
		}
		if time.Since(waited) > 60*time.Second {
			t.Fatalf("%d of %d flood addresses not answered once in 60 s", quiet, attackers)
		}
	}
	phase := time.Now() // the new callers come
	sentBefore := sent.Load()

	newDone := make(chan struct{})
	var mu sync.Mutex
	var cachedRefused []string
	cachedScrapes := 0
	var cwg sync.WaitGroup
	for i, tok := range cachedTokens {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			c := pk.clientFrom(loopback(5, i+1), false)
			for {
				select {
				case <-newDone:
					return
				default:
				}
				start := time.Now()
				code, err := do(c, p.URL, "/metrics", bearer(tok))
				mu.Lock()
				cachedScrapes++
				if code != 200 {
					cachedRefused = append(cachedRefused, fmt.Sprintf("cached identity %d: %d (%v) after %v at +%v", i, code, err, time.Since(start).Round(time.Millisecond), time.Since(floodStart).Round(time.Millisecond)))
				}
				mu.Unlock()
				time.Sleep(cachedEvery)
			}
		}()
	}

	type result struct {
		code        int
		err         error
		start, done time.Time
	}
	results := make([]result, newCallers)
	var nwg sync.WaitGroup
	for i, tok := range newTokens {
		nwg.Add(1)
		go func() {
			defer nwg.Done()
			c := pk.clientFrom(loopback(4, i+1), false)
			results[i].start = time.Now()
			results[i].code, results[i].err = do(c, p.URL, "/metrics", bearer(tok))
			results[i].done = time.Now()
		}()
		time.Sleep(newEvery)
	}
	nwg.Wait()
	close(newDone)
	cwg.Wait()
	elapsed := time.Since(floodStart)
	trAfter, sars := front.reviews()
	sentDuring := sent.Load() - sentBefore
	stopFlood()

	// The TokenReviews the API server received while the new callers came:
	// the new tokens' own, and how many flood tokens went between each new
	// caller's request and its review.
	own := make([]*reviewSeen, newCallers)
	var flood []reviewSeen
	floodCut := 0
	for _, s := range rec.reviews() {
		switch {
		case s.token >= 0 && own[s.token] == nil:
			own[s.token] = &s
		case s.token < 0 && !s.at.Before(phase):
			flood = append(flood, s)
			if s.cut {
				floodCut++
			}
		}
	}
	var took, toReview, reviewTook []time.Duration
	var ahead []int
	accepted := 0
	for i, r := range results {
		took = append(took, r.done.Sub(r.start))
		if r.code == 200 {
			accepted++
		}
		rv := own[i]
		if rv == nil {
			t.Errorf("new token %d: no TokenReview sent (answered %d %v after %v)", i, r.code, r.err, r.done.Sub(r.start).Round(time.Millisecond))
			continue
		}
		toReview = append(toReview, rv.at.Sub(r.start))
		reviewTook = append(reviewTook, rv.done.Sub(rv.at))
		n := 0
		for _, s := range flood {
			if s.at.After(r.start) && s.at.Before(rv.at) {
				n++
			}
		}
		ahead = append(ahead, n)
		if r.code == 200 {
			continue
		}
		t.Errorf("new token %d: %d %v after %v; its TokenReview sent after %v, the API server %s %v on it",
			i, r.code, r.err, r.done.Sub(r.start).Round(time.Millisecond), rv.at.Sub(r.start).Round(time.Millisecond),
			map[bool]string{true: "cut off after", false: "answered in"}[rv.cut], rv.done.Sub(rv.at).Round(time.Millisecond))
	}
	trs := trAfter - trBefore
	t.Logf("flood: %d clients on %d addresses sent %d made-up tokens in %v (%.0f/s; %d answered, in %v on average)",
		attackers, attackers, sent.Load(), elapsed.Round(100*time.Millisecond), float64(sent.Load())/elapsed.Seconds(), answered.Load(),
		(time.Duration(floodTook.Load()) / time.Duration(max(answered.Load(), 1))).Round(time.Millisecond))
	t.Logf("while the new callers came: %d flood tokens presented, %d reviewed (%.1f%%; %d cut off by --kube-api-timeout); %d of %d new tokens reviewed, %d accepted",
		sentDuring, len(flood), 100*float64(len(flood))/float64(max(sentDuring, 1)), floodCut, len(toReview), newCallers, accepted)
	t.Logf("new callers: answer latency %s; request to its TokenReview %s; flood TokenReviews in between %s; the API server's time on it %s",
		spread(took), spread(toReview), spreadInt(ahead), spread(reviewTook))
	t.Logf("cached identities: %d scrapes, %d refused", cachedScrapes, len(cachedRefused))
	t.Logf("the API server received %d TokenReviews during the flood (%.1f/s) and %d SubjectAccessReviews in all", trs, float64(trs)/elapsed.Seconds(), sars)
	for _, r := range cachedRefused {
		t.Error(r)
	}
	if len(flood) >= int(sentDuring) {
		t.Errorf("%d flood tokens reviewed of %d presented: none was held back, so either the flood never outran the budget (and nothing was tested) or there is no budget", len(flood), sentDuring)
	}
	if limit := budget*elapsed.Seconds() + burst + newCallers + 10; float64(trs) > limit {
		t.Errorf("%d TokenReviews in %v: over the budget (%d/s, burst %d)", trs, elapsed, budget, burst)
	}
}

// spread is the median and max of ds.
func spread(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	ds = append([]time.Duration(nil), ds...)
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return fmt.Sprintf("median %v, max %v", ds[len(ds)/2].Round(time.Millisecond), ds[len(ds)-1].Round(time.Millisecond))
}

func spreadInt(ns []int) string {
	if len(ns) == 0 {
		return "none"
	}
	ns = append([]int(nil), ns...)
	sort.Ints(ns)
	return fmt.Sprintf("median %d, max %d", ns[len(ns)/2], ns[len(ns)-1])
}

// rss reads a process's resident and peak resident memory in KiB.
func rss(t *testing.T, pid int) (now, peak int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			now = v
		case "VmHWM:":
			peak = v
		}
	}
	return now, peak
}

// TestMemoryUnderHostileConnections is the attack report's item 5: 3,000
// connections that complete (or try) a TLS handshake and then hold their
// connection without a usable request — a third idle over HTTP/1.1, a third
// idle over HTTP/2, a third with a POST declaring 100,000 bytes of body and
// sending one — must keep the proxy, with default flags, within the
// injected sidecar's 128 MiB memory limit; a scraper's established
// keep-alive connection keeps being served throughout.
func TestMemoryUnderHostileConnections(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("needs /proc")
	}
	const (
		hostile  = 3000
		parallel = 256
		hold     = 12 * time.Second
		limitKiB = 128 << 10
	)
	ns := newNamespace(t)
	allowNonResource(t, saSubject(ns, "scraper"), "/metrics")
	waitNonResource(t, saUser(ns, "scraper"), saGroups(ns), "/metrics")
	tok := token(t, ns, "scraper")
	front, up, pk := newAPIFront(t), newUpstream(t), newPKI(t)
	p := startProxy(t, append(pk.servingFlags(t), "--upstream="+up.url, "--kubeconfig="+front.kubeconfig)...)
	pid := p.Pid()
	scraper := pk.client()
	if code, _ := p.get(t, scraper, "/metrics", bearer(tok)); code != 200 {
		t.Fatalf("scrape before: %d", code)
	}
	base, _ := rss(t, pid)

	addr := p.Addr
	var mu sync.Mutex
	var conns []net.Conn
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}()
	var handshaken, waiting atomic.Int64
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range hostile {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			raw, err := net.DialTimeout("tcp", addr, 2*time.Second)
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, raw)
			mu.Unlock()
			proto := []string{"http/1.1", "h2", "http/1.1"}[i%3]
			c := tls.Client(raw, &tls.Config{RootCAs: pk.ca.Pool(), ServerName: "127.0.0.1", NextProtos: []string{proto}})
			_ = c.SetDeadline(time.Now().Add(time.Second))
			if err := c.Handshake(); err != nil {
				waiting.Add(1) // beyond --max-connections: held in the accept queue
				return
			}
			_ = c.SetDeadline(time.Time{})
			handshaken.Add(1)
			switch i % 3 {
			case 1:
				_, _ = io.WriteString(c, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
			case 2:
				_, _ = io.WriteString(c, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nx")
			}
		}()
	}
	wg.Wait()
	opened := time.Since(start)

	var peakSeen, lastRSS int64
	scrapes, failed := 0, 0
	for deadline := time.Now().Add(hold); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		now, peak := rss(t, pid)
		lastRSS = now
		peakSeen = max(peakSeen, peak)
		scrapes++
		if code, _ := do(scraper, p.URL, "/metrics", bearer(tok)); code != 200 {
			failed++
		}
	}
	t.Logf("%d hostile connections opened in %v: %d completed the TLS handshake, %d held waiting in the accept queue",
		hostile, opened.Round(100*time.Millisecond), handshaken.Load(), waiting.Load())
	t.Logf("proxy RSS: %d MiB before, %d MiB after %v under the hostile connections, peak %d MiB (limit 128 MiB)",
		base>>10, lastRSS>>10, hold, peakSeen>>10)
	t.Logf("the scraper's keep-alive connection: %d scrapes, %d failed", scrapes, failed)
	if peakSeen >= limitKiB {
		t.Errorf("peak RSS %d MiB, over the sidecar's 128 MiB limit", peakSeen>>10)
	}
	if failed > 0 {
		t.Errorf("%d of %d scrapes on an established connection failed", failed, scrapes)
	}
}

// TestWeakTLSOnlyByFlag is the attack report's item 6 on the binary: with
// default flags a client offering only the CBC-SHA1 suites fails the
// handshake; with such a suite given by flag it succeeds, and the start-up
// log names the suite in a warning.
func TestWeakTLSOnlyByFlag(t *testing.T) {
	cbc := []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
		tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA}
	up, pk := newUpstream(t), newPKI(t)
	dial := func(p *proxyProc) error {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", p.Addr,
			&tls.Config{RootCAs: pk.ca.Pool(), MaxVersion: tls.VersionTLS12, CipherSuites: cbc})
		if err == nil {
			c.Close()
		}
		return err
	}
	static := []string{"--upstream=" + up.url, pk.clientCAFlag(t), "--authz=static", "--allowed-users=x"}
	def := startProxy(t, append(pk.servingFlags(t), static...)...)
	if err := dial(def); err == nil {
		t.Error("default flags: a client offering only CBC-SHA1 suites completed the handshake")
	}
	if strings.Contains(def.Log(), "tls-cipher-suites") {
		t.Errorf("default flags: a TLS warning was logged:\n%s", def.Log())
	}
	weak := startProxy(t, append(pk.servingFlags(t), append(static,
		"--tls-cipher-suites=TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256")...)...)
	if err := dial(weak); err != nil {
		t.Errorf("--tls-cipher-suites with a CBC-SHA1 suite: handshake failed: %v", err)
	}
	found := false
	for _, l := range strings.Split(weak.Log(), "\n") {
		found = found || (strings.Contains(l, "WARNING") && strings.Contains(l, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA is weak"))
	}
	if !found {
		t.Errorf("no warning names TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA:\n%s", weak.Log())
	}
}
