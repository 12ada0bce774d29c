// Command fleet-bench simulates a fleet of node proxies scraped by one
// Prometheus against one real API server, and measures the TokenReviews and
// SubjectAccessReviews per second the API server receives (its own
// apiserver_request_total), in steady state and after every proxy restarts
// at once, plus the proxies' heap per instance.
//
//	go run ./test/bench/fleet [-nodes 1000] [-identities 1] [-scale 20] [-modes review,local,krp]
//
// make bench-fleet runs it twice: one identity at -scale 20, and ten at
// -scale 6 with review and local, the most two cores answer (docs/proxy.md).
//
// Time is compressed: the scrape interval and every cache TTL are their
// real values divided by -scale, so rates come out -scale times the real
// fleet's, and their ratios (the TTL over the interval) are kept. The nodes
// are proxy.Server instances in this one process, driven through their
// handlers (TLS costs CPU, not reviews); their upstream is a closed loopback
// port, so an authorized scrape ends in the proxy's 502 right after the
// decision, and the machine's CPU goes to the proxies, not to exporters.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/rbac-proxy/rbac-proxy/internal/testkit"
	"github.com/rbac-proxy/rbac-proxy/internal/testpki"
	"github.com/rbac-proxy/rbac-proxy/test/framework"
)

// The real fleet's timings, which -scale divides.
const (
	realInterval   = 15 * time.Second // Prometheus' scrape interval
	realTokenTTL   = 2 * time.Minute  // rbac-proxy's and kube-rbac-proxy's token TTL
	realAllowTTL   = 5 * time.Minute  // both allow TTLs
	realDenyTTL    = 30 * time.Second // both deny TTLs
	realTokenFail  = 10 * time.Second // rbac-proxy's rejected-token TTL
	audience       = "rbac-proxy-fleet"
	maxIdentities  = 100
	sampleInterval = time.Second
)

// mode is one proxy configuration measured.
type mode struct {
	name, label string
	args        func(scale float64) []string
}

var modes = []mode{
	{"review", "TokenReview, rbac-proxy defaults", func(k float64) []string {
		return cachePolicy(k, realTokenFail)
	}},
	{"local", "local ServiceAccount verification", func(k float64) []string {
		return append([]string{"--service-account-token-verification=local"}, cachePolicy(k, realTokenFail)...)
	}},
	// kube-rbac-proxy v0.19.1 caches a token review 2 min, failed or not
	// (apiserver's delegating authenticator), an allow 5 min, a deny 30 s.
	{"krp", "TokenReview, rbac-proxy with kube-rbac-proxy's TTLs", func(k float64) []string {
		return cachePolicy(k, realTokenTTL)
	}},
}

// cachePolicy is the four cache TTL flags, divided by k, with tokenFail as
// the rejected-token TTL.
func cachePolicy(k float64, tokenFail time.Duration) []string {
	ttl := func(name string, real time.Duration) string { return fmt.Sprintf("--%s=%s", name, scaled(real, k)) }
	return []string{ttl("authentication-token-webhook-cache-ttl", realTokenTTL),
		ttl("authentication-token-webhook-cache-unauthorized-ttl", tokenFail),
		ttl("authorization-webhook-cache-authorized-ttl", realAllowTTL),
		ttl("authorization-webhook-cache-unauthorized-ttl", realDenyTTL)}
}

func scaled(d time.Duration, k float64) time.Duration { return time.Duration(float64(d) / k) }

func main() {
	nodes := flag.Int("nodes", 1000, "simulated node proxies")
	idents := flag.String("identities", "1", "comma-separated counts of Prometheus identities, one run each")
	scale := flag.Float64("scale", 20, "time compression: the 15 s interval and the cache TTLs are divided by it")
	modeList := flag.String("modes", "review,local,krp", "comma-separated configurations: review, local, krp")
	flag.Parse()
	// client-go logs every review that timed out; the table counts the
	// scrapes they failed instead.
	klog.SetLogger(logr.Discard())
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, *nodes, *idents, *scale, *modeList)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet-bench:", err)
		os.Exit(1)
	}
}

// result is one run: a mode with a count of identities.
type result struct {
	mode             mode
	identities       int
	steady, restart  rates
	scrapesPerSecond float64
	refused          int64
	heapPerNode      float64
	rebuild          time.Duration
}

func run(ctx context.Context, nodes int, idents string, scale float64, modeList string) error {
	var counts []int
	for _, s := range strings.Split(idents, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > maxIdentities {
			return fmt.Errorf("-identities: %q is not a count from 1 to %d", s, maxIdentities)
		}
		counts = append(counts, n)
	}
	var chosen []mode
	for _, name := range strings.Split(modeList, ",") {
		found := false
		for _, m := range modes {
			if m.name == strings.TrimSpace(name) {
				chosen, found = append(chosen, m), true
			}
		}
		if !found {
			return fmt.Errorf("-modes: unknown %q", name)
		}
	}
	if nodes < 1 || scale <= 0 {
		return fmt.Errorf("-nodes and -scale must be positive")
	}
	interval := scaled(realInterval, scale)
	allow := scaled(realAllowTTL, scale)

	work, err := os.MkdirTemp("", "fleet-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	fmt.Println("starting the control plane ...")
	cp, err := framework.Start(ctx, framework.Options{})
	if err != nil {
		return err
	}
	defer func() { _ = cp.Stop() }()
	tokens, err := identities(ctx, cp, counts)
	if err != nil {
		return err
	}
	base, err := baseArgs(work, cp.KubeconfigPath)
	if err != nil {
		return err
	}
	sctx, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	samples := startSampler(sctx, cp.Clientset, sampleInterval)

	fmt.Printf("%d nodes; time ÷ %g: scrape every %v, token TTL %v, allow %v, deny %v; settle %v, steady %v, after restart %v\n",
		nodes, scale, interval, scaled(realTokenTTL, scale), allow, scaled(realDenyTTL, scale), allow, steadyWindow(allow, interval), 2*allow)
	var results []result
	for _, m := range chosen {
		for _, n := range counts {
			r, err := runOne(ctx, m, nodes, tokens[:n], append(base, m.args(scale)...), interval, scaled(realTokenTTL, scale), allow, samples)
			if err != nil {
				return fmt.Errorf("%s, %d identities: %w", m.name, n, err)
			}
			if err := samples.Err(); err != nil {
				return fmt.Errorf("reading the API server's metrics: %w", err)
			}
			results = append(results, r)
			fmt.Printf("%-52s %2d identities: steady TR %.1f/s (peak %.1f), SAR %.1f/s (peak %.1f); after restart TR %.1f/s (peak %.1f), SAR %.1f/s (peak %.1f); %.0f scrapes/s, %d refused, %.0f KiB heap/node, rebuild %v\n",
				m.label, n, r.steady.meanTR, r.steady.peakTR, r.steady.meanSAR, r.steady.peakSAR,
				r.restart.meanTR, r.restart.peakTR, r.restart.meanSAR, r.restart.peakSAR,
				r.scrapesPerSecond, r.refused, r.heapPerNode/1024, r.rebuild.Round(time.Millisecond))
		}
	}
	printTable(results, nodes, scale, interval)
	return nil
}

// runOne builds the fleet, lets it join over one token TTL and settle
// until one allow TTL has passed, measures the
// steady state for two renewal periods, restarts every proxy at once and
// measures two allow TTLs more.
func runOne(ctx context.Context, m mode, nodes int, tokens []string, args []string, interval, ramp, allow time.Duration, samples *sampler) (result, error) {
	r := result{mode: m, identities: len(tokens)}
	before := heapInUse()
	f := newFleet(nodes, args)
	if _, err := f.build(); err != nil {
		return r, err
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	var c scrapeCounts
	wg := f.prometheus(sctx, tokens, interval, ramp, &c)
	wait := func(d time.Duration) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
			return nil
		}
	}
	if err := wait(allow); err != nil {
		return r, err
	}
	r.heapPerNode = float64(int64(heapInUse())-int64(before)) / float64(nodes)
	t0, s0 := time.Now(), c.passed.Load()+c.refused.Load()
	if err := wait(steadyWindow(allow, interval)); err != nil {
		return r, err
	}
	t1 := time.Now()
	r.scrapesPerSecond = float64(c.passed.Load()+c.refused.Load()-s0) / t1.Sub(t0).Seconds()
	r.steady = samples.window(t0, t1)
	var err error
	if r.rebuild, err = f.build(); err != nil {
		return r, err
	}
	t2 := time.Now()
	if err := wait(2 * allow); err != nil {
		return r, err
	}
	// The window starts at the last sample before the swap, so the burst
	// of the restart is inside it.
	r.restart = samples.window(t2.Add(-sampleInterval), time.Now())
	stop()
	wg.Wait()
	r.refused = c.refused.Load()
	return r, nil
}

// steadyWindow is two renewal periods of the allow TTL (a renewal comes on
// average 0.95 TTL plus half an interval after the last), so that the mean
// counts each (node, identity) twice however lumpy the renewals still are.
func steadyWindow(allow, interval time.Duration) time.Duration {
	return 2 * (allow*95/100 + interval/2)
}

// identities creates maxIdentities ServiceAccounts allowed to get /metrics
// and returns a token of each for the proxies' audience (TokenRequest API).
func identities(ctx context.Context, cp *framework.ControlPlane, counts []int) ([]string, error) {
	n := 0
	for _, c := range counts {
		n = max(n, c)
	}
	ns, err := cp.CreateNamespace(ctx, "fleet", nil)
	if err != nil {
		return nil, err
	}
	rbac := cp.Clientset.RbacV1()
	if _, err := rbac.ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "fleet-metrics"},
		Rules:      []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}},
	}, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "fleet-metrics"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "fleet-metrics"},
	}
	for i := range n {
		binding.Subjects = append(binding.Subjects, rbacv1.Subject{Kind: "ServiceAccount", Namespace: ns, Name: fmt.Sprintf("prometheus-%d", i)})
	}
	if _, err := rbac.ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	time.Sleep(2 * time.Second) // the RBAC informer
	tokens := make([]string, n)
	for i := range tokens {
		if tokens[i], err = cp.ServiceAccountToken(ctx, ns, fmt.Sprintf("prometheus-%d", i), []string{audience}); err != nil {
			return nil, err
		}
	}
	return tokens, nil
}

// baseArgs are every node's flags but the cache policy: a serving
// certificate (loaded, never served), the closed upstream port, the API
// server and the proxies' own audience.
func baseArgs(dir, kubeconfig string) ([]string, error) {
	ca, err := testpki.NewCA("fleet")
	if err != nil {
		return nil, err
	}
	pair, err := ca.Server("127.0.0.1")
	if err != nil {
		return nil, err
	}
	cert, key, err := pair.Write(dir, "serving")
	if err != nil {
		return nil, err
	}
	port, err := testkit.FreePort()
	if err != nil {
		return nil, err
	}
	closed := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	return []string{"--secure-listen-address=127.0.0.1:0", "--upstream=http://" + closed + "/",
		"--tls-cert-file=" + cert, "--tls-private-key-file=" + key,
		"--kubeconfig=" + filepath.Clean(kubeconfig), "--auth-token-audiences=" + audience}, nil
}

// printTable prints the results as the Markdown table docs/proxy.md shows,
// with each rate also as the real fleet's (÷ scale) and the mean the
// formula in docs/proxy.md predicts for the steady state.
func printTable(results []result, nodes int, scale float64, interval time.Duration) {
	fmt.Println()
	fmt.Printf("%d nodes, time ÷ %g (scrape every %v, token TTL %v, allow TTL %v); reviews/s as the API server received them, then ÷ %g as the real fleet's (%v interval)\n",
		nodes, scale, interval, scaled(realTokenTTL, scale), scaled(realAllowTTL, scale), scale, realInterval)
	fmt.Println()
	fmt.Println("| configuration | identities | phase | TokenReviews/s mean / peak | real fleet | SARs/s mean / peak | real fleet | predicted mean TR / SAR (real) | scrapes/s | refused | heap/node |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|")
	s := realInterval.Seconds()
	for _, r := range results {
		ni := float64(nodes * r.identities)
		predTR := ni / (0.95*realTokenTTL.Seconds() + s/2)
		if r.mode.name == "local" {
			predTR = 0
		}
		predSAR := ni / (0.95*realAllowTTL.Seconds() + s/2)
		for _, p := range []struct {
			name string
			r    rates
		}{{"steady", r.steady}, {"after restart", r.restart}} {
			pred, extra := "—", "—"
			if p.name == "steady" {
				pred = fmt.Sprintf("%.1f / %.1f", predTR, predSAR)
				extra = fmt.Sprintf("%.0f KiB", r.heapPerNode/1024)
			}
			scr := fmt.Sprintf("%.0f (of %.0f)", r.scrapesPerSecond, ni/interval.Seconds())
			refused := "—"
			if p.name == "after restart" {
				scr, refused = "—", strconv.FormatInt(r.refused, 10)
			}
			measured := fmt.Sprintf("%.1f / %.1f | %.1f / %.1f | %.1f / %.1f | %.1f / %.1f",
				p.r.meanTR, p.r.peakTR, p.r.meanTR/scale, p.r.peakTR/scale,
				p.r.meanSAR, p.r.peakSAR, p.r.meanSAR/scale, p.r.peakSAR/scale)
			if p.r.samples < 2 {
				measured = "no answer from /metrics | — | — | —"
			}
			fmt.Printf("| %s | %d | %s | %s | %s | %s | %s | %s |\n",
				r.mode.label, r.identities, p.name, measured, pred, scr, refused, extra)
		}
	}
	fmt.Println()
	fmt.Println("(steady: two renewal periods of the allow TTL, 2 × (0.95 TTL + interval/2), after one TTL of settling; after restart: two allow TTLs from the instant every proxy was replaced by a fresh one; peak: the highest one-second sample; refused: scrapes of the whole run not authorized, failed reviews included)")
}
