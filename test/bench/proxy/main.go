// Command proxy-bench measures rbac-proxy against the upstream served directly
// over TLS and against kube-rbac-proxy v0.19.1, on a real API server:
// throughput and p99 latency of a DCGM-like 32 KB scrape over 32 keep-alive
// connections, the TokenReviews and SubjectAccessReviews the API server
// receives for a burst of 2,000 scrapes from 50 concurrent clients with one
// token, and each proxy's resident memory. The upstream is a process of its
// own (upstream.go), as an exporter is. Every setup is measured with every
// core shared by the load, the upstream and the proxy, and again with the
// load on half of the CPUs and the upstream and the proxy on the other half,
// as on a GPU node scraped from elsewhere (cores.go); each proxy is compared
// with the direct scrape in the same layout.
//
//	go run ./test/bench/proxy [-duration 4s] [-rounds 5] [-variant label=dir ...]
//
// Each -variant also measures an rbac-proxy built from another checkout
// (a worktree with a change reverted, say), interleaved with the others, so
// that a decision compares figures taken in the same run.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/rbac-proxy/rbac-proxy/internal/testpki"
	"github.com/rbac-proxy/rbac-proxy/test/framework"
)

// payloadSize is the size of the upstream's exposition, which every
// scrape checks it received whole.
const payloadSize = 32 * 1024

func main() {
	if _, ok := os.LookupEnv(upstreamEnv); ok {
		if err := serveUpstreamProcess(os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "proxy-bench upstream:", err)
			os.Exit(1)
		}
		return
	}
	duration := flag.Duration("duration", 4*time.Second, "measuring time per setup and round")
	conns := flag.Int("connections", 32, "keep-alive connections of the load")
	rounds := flag.Int("rounds", 5, "interleaved rounds per setup")
	tenancyOnly := flag.Bool("tenancy-only", false, "run only the tenancy section")
	var variants variantFlag
	flag.Var(&variants, "variant", "also measure rbac-proxy built from the checkout `label=dir` (repeatable)")
	flag.Parse()
	// An interrupt stops the load at once and ends the run through its
	// deferred stops, so no proxy, upstream or control plane outlives it.
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, *duration, *conns, *rounds, variants, *tenancyOnly)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "proxy-bench:", err)
		os.Exit(1)
	}
}

// variantFlag is the repeatable -variant label=dir.
type variantFlag []struct{ label, dir string }

func (v *variantFlag) String() string { return fmt.Sprint(*v) }

func (v *variantFlag) Set(s string) error {
	label, dir, ok := strings.Cut(s, "=")
	if !ok || label == "" || dir == "" {
		return fmt.Errorf("want label=dir, got %q", s)
	}
	if _, err := os.Stat(filepath.Join(dir, "cmd", "proxy")); err != nil {
		return fmt.Errorf("%s is not an rbac-proxy checkout: %w", dir, err)
	}
	*v = append(*v, struct{ label, dir string }{label, dir})
	return nil
}

func run(ctx context.Context, duration time.Duration, conns, rounds int, variants variantFlag, tenancyOnly bool) error {
	work, err := os.MkdirTemp("", "proxy-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	root, err := framework.RepoRoot()
	if err != nil {
		return err
	}
	rbacProxy, krp := filepath.Join(work, "rbac-proxy"), filepath.Join(work, "kube-rbac-proxy")
	fmt.Println("building rbac-proxy and kube-rbac-proxy v0.19.1 ...")
	if err := goBuild(root, rbacProxy, "./cmd/proxy"); err != nil {
		return err
	}
	if err := goBuild(filepath.Join(root, "test/bench/proxy/krp"), krp, "github.com/brancz/kube-rbac-proxy/cmd/kube-rbac-proxy"); err != nil {
		return err
	}
	proxies := []struct{ name, bin string }{{"rbac-proxy", rbacProxy}}
	for i, v := range variants {
		bin := filepath.Join(work, fmt.Sprintf("rbac-proxy-variant-%d", i))
		fmt.Printf("building rbac-proxy %s from %s ...\n", v.label, v.dir)
		if err := goBuild(v.dir, bin, "./cmd/proxy"); err != nil {
			return err
		}
		proxies = append(proxies, struct{ name, bin string }{"rbac-proxy " + v.label, bin})
	}
	proxies = append(proxies, struct{ name, bin string }{"kube-rbac-proxy", krp})

	fmt.Println("starting the control plane ...")
	cp, err := framework.Start(ctx, framework.Options{})
	if err != nil {
		return err
	}
	defer func() { _ = cp.Stop() }()
	token, err := setupRBAC(ctx, cp)
	if err != nil {
		return err
	}
	front, err := newFront(cp.Config, work)
	if err != nil {
		return err
	}

	ca, err := testpki.NewCA("bench")
	if err != nil {
		return err
	}
	serving, err := ca.Server("127.0.0.1")
	if err != nil {
		return err
	}
	certFile, keyFile, err := serving.Write(work, "serving")
	if err != nil {
		return err
	}
	if tenancyOnly {
		return tenancySection(ctx, cp, rbacProxy, token, certFile, keyFile, front.kubeconfig, work, ca, conns, rounds, duration)
	}
	// Each setup runs in every layout the machine allows (cores.go), against
	// the direct scrape of the same layout.
	layouts := []layout{shared()}
	if l, err := split(); err != nil {
		fmt.Println("only the shared layout:", err)
	} else {
		layouts = append(layouts, l)
	}
	var setups []*setup
	var burstUpstream *upstream
	for _, l := range layouts {
		overTLS, err := startUpstream(payloadSize, "", certFile, keyFile, l.startOnNode)
		if err != nil {
			return err
		}
		defer stop(overTLS.cmd)
		plain, err := startUpstream(payloadSize, "", "", "", l.startOnNode)
		if err != nil {
			return err
		}
		defer stop(plain.cmd)
		if burstUpstream == nil {
			burstUpstream = plain
		}
		direct := &setup{name: "direct " + l.name, layout: l, url: "https://" + overTLS.addr + "/metrics", upstream: overTLS}
		setups = append(setups, direct)
		for _, p := range proxies {
			proc, err := startProxy(ctx, p.bin, "http://"+plain.addr+"/", certFile, keyFile, front.kubeconfig, work, l.startOnNode)
			if err != nil {
				return fmt.Errorf("%s %s: %w", p.name, l.name, err)
			}
			defer proc.Stop()
			setups = append(setups, &setup{name: p.name + " " + l.name, proxy: p.name, layout: l, proc: proc,
				url: proc.URL + "/metrics", token: token, upstream: plain, direct: direct})
		}
	}
	// Rounds interleave the setups so that load from elsewhere on the
	// machine hits all of them alike; each setup's figure is its median round.
	fmt.Printf("load: %d keep-alive connections, %d rounds of %v per setup, %d-byte payload\n", conns, rounds, duration, payloadSize)
	perRound := map[string][]result{}
	cpuPerReq := map[string][]float64{}
	for round := 1; round <= rounds; round++ {
		for _, s := range setups {
			var cpu0 time.Duration
			if s.proc != nil {
				cpu0 = cpuTime(s.proc.Pid())
			}
			if err := s.layout.enter(); err != nil {
				return err
			}
			self0, up0 := cpuTime(os.Getpid()), cpuTime(s.upstream.cmd.Process.Pid)
			m0 := readMachine()
			r, err := load(ctx, s.url, ca, s.token, conns, duration, payloadSize)
			m1 := readMachine()
			self1, up1 := cpuTime(os.Getpid()), cpuTime(s.upstream.cmd.Process.Pid)
			if err := s.layout.leave(); err != nil {
				return err
			}
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			perRound[s.name] = append(perRound[s.name], r)
			perScrape := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(r.total) }
			line := fmt.Sprintf("round %d %-26s %s, load CPU %.0f µs/scrape, upstream %.0f µs, machine %.0f%% busy, %.1f context switches/scrape", round, s.name, r,
				perScrape(self1-self0), perScrape(up1-up0), 100*(m1.busy-m0.busy)/(m1.total-m0.total), (m1.switches-m0.switches)/float64(r.total))
			if s.proc != nil {
				line += fmt.Sprintf(", %.2f× direct", r.rps/perRound[s.direct.name][round-1].rps)
				us := perScrape(cpuTime(s.proc.Pid()) - cpu0)
				cpuPerReq[s.name] = append(cpuPerReq[s.name], us)
				line += fmt.Sprintf(", proxy CPU %.0f µs/scrape", us)
			}
			fmt.Println(line)
		}
	}
	// Ratios come from the rounds themselves: each pairs setups measured
	// seconds apart, so load from elsewhere on the machine cancels out
	// better than in a ratio of medians taken from different rounds.
	results := map[string]result{}
	for name, rs := range perRound {
		sorted := slices.Clone(rs)
		sort.Slice(sorted, func(i, j int) bool { return sorted[i].rps < sorted[j].rps })
		results[name] = sorted[len(sorted)/2]
	}
	cpu := map[string]float64{}
	for name, v := range cpuPerReq {
		sort.Float64s(v)
		cpu[name] = v[len(v)/2]
	}
	rss := map[string]int64{}
	for _, s := range setups {
		if s.proc != nil {
			rss[s.name] = rssKB(s.proc.Pid())
		}
	}

	// The burst, on fresh processes with empty caches.
	bursts := map[string][2]int64{}
	for _, p := range proxies {
		proc, err := startProxy(ctx, p.bin, "http://"+burstUpstream.addr+"/", certFile, keyFile, front.kubeconfig, work, nil)
		if err != nil {
			return err
		}
		front.reset()
		ok, err := burst(ctx, proc.URL+"/metrics", ca, token, 50, 2000)
		_ = proc.Stop()
		if err != nil {
			return fmt.Errorf("%s burst: %w", p.name, err)
		}
		tr, sar := front.counts()
		bursts[p.name] = [2]int64{tr, sar}
		fmt.Printf("%-16s burst: %d/2000 scrapes OK from 50 clients, one token: %d TokenReviews, %d SubjectAccessReviews\n", p.name, ok, tr, sar)
	}

	fmt.Println()
	fmt.Println("| setup | layout | req/s | p99 | vs direct (rounds) | proxy CPU per scrape | TokenReviews / SARs for 2,000 scrapes | RSS |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	for _, s := range setups {
		r := results[s.name]
		if s.proc == nil {
			fmt.Printf("| upstream direct (TLS) | %s | %.0f | %v | 1.00× | — | — | — |\n", s.layout.name, r.rps, r.p99.Round(10*time.Microsecond))
			continue
		}
		label := s.proxy
		if s.proxy == "kube-rbac-proxy" {
			label += " v0.19.1"
		}
		b := bursts[s.proxy]
		fmt.Printf("| %s | %s | %.0f | %v | %s | %.0f µs | %d / %d | %d MiB |\n", label, s.layout.name, r.rps, r.p99.Round(10*time.Microsecond),
			ratios(perRound[s.name], perRound[s.direct.name]), cpu[s.name], b[0], b[1], rss[s.name]/1024)
	}
	fmt.Println()
	for _, l := range layouts {
		fmt.Printf("rbac-proxy / kube-rbac-proxy throughput, %s: %s\n", l.name,
			ratios(perRound["rbac-proxy "+l.name], perRound["kube-rbac-proxy "+l.name]))
		for _, v := range variants {
			name := "rbac-proxy " + v.label
			fmt.Printf("rbac-proxy / %s throughput, %s: %s; %s / kube-rbac-proxy: %s\n", name, l.name,
				ratios(perRound["rbac-proxy "+l.name], perRound[name+" "+l.name]),
				name, ratios(perRound[name+" "+l.name], perRound["kube-rbac-proxy "+l.name]))
		}
	}
	fmt.Println("(req/s, p99 and CPU: each setup's median round; ratios: the median of the per-round ratios, then their range)")
	fmt.Println()
	return tenancySection(ctx, cp, rbacProxy, token, certFile, keyFile, front.kubeconfig, work, ca, conns, rounds, duration)
}

// setup is one thing measured in one layout: the upstream scraped directly,
// or a proxy in front of it.
type setup struct {
	name, proxy, url, token string
	layout                  layout
	proc                    *framework.Proxy // nil for the direct scrape
	upstream                *upstream
	direct                  *setup // the direct scrape of the same layout, for a proxy
}

// ratios is the median over rounds of a[i].rps / b[i].rps, then the lowest
// and highest of them.
func ratios(a, b []result) string {
	r := make([]float64, 0, len(a))
	for i := range a {
		r = append(r, a[i].rps/b[i].rps)
	}
	sort.Float64s(r)
	return fmt.Sprintf("%.2f× (%.2f–%.2f)", r[len(r)/2], r[0], r[len(r)-1])
}

func goBuild(dir, out, pkg string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building %s: %w", pkg, err)
	}
	return nil
}

// setupRBAC creates a ServiceAccount allowed to get /metrics and returns its token.
func setupRBAC(ctx context.Context, cp *framework.ControlPlane) (string, error) {
	ns, err := cp.CreateNamespace(ctx, "bench", nil)
	if err != nil {
		return "", err
	}
	cs := cp.Clientset.RbacV1()
	if _, err := cs.ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "bench-metrics"},
		Rules:      []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}},
	}, metav1.CreateOptions{}); err != nil {
		return "", err
	}
	if _, err := cs.ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "bench-metrics"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "bench-metrics"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: "scraper"}},
	}, metav1.CreateOptions{}); err != nil {
		return "", err
	}
	time.Sleep(2 * time.Second) // RBAC informer
	return cp.ServiceAccountToken(ctx, ns, "scraper", nil)
}

// front forwards to the API server as admin and counts reviews.
type front struct {
	kubeconfig string
	tr, sar    atomic.Int64
}

func newFront(cfg *rest.Config, dir string) (*front, error) {
	target, err := url.Parse(cfg.Host)
	if err != nil {
		return nil, err
	}
	transport, err := rest.TransportFor(cfg)
	if err != nil {
		return nil, err
	}
	f := &front{}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = transport
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/tokenreviews"):
			f.tr.Add(1)
		case strings.HasSuffix(r.URL.Path, "/subjectaccessreviews"):
			f.sar.Add(1)
		}
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(ln) }()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["front"] = &clientcmdapi.Cluster{Server: "http://" + ln.Addr().String()}
	kc.AuthInfos["p"] = &clientcmdapi.AuthInfo{}
	kc.Contexts["front"] = &clientcmdapi.Context{Cluster: "front", AuthInfo: "p"}
	kc.CurrentContext = "front"
	f.kubeconfig = filepath.Join(dir, "kubeconfig")
	return f, clientcmd.WriteToFile(*kc, f.kubeconfig)
}

func (f *front) reset()                 { f.tr.Store(0); f.sar.Store(0) }
func (f *front) counts() (int64, int64) { return f.tr.Load(), f.sar.Load() }

// dcgmPayload is a DCGM-exporter-like exposition of about size bytes.
func dcgmPayload(size int) []byte {
	metrics := []string{"DCGM_FI_DEV_SM_CLOCK", "DCGM_FI_DEV_MEM_CLOCK", "DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_POWER_USAGE",
		"DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_MEM_COPY_UTIL", "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_FB_USED", "DCGM_FI_PROF_GR_ENGINE_ACTIVE"}
	var b strings.Builder
	for i := 0; b.Len() < size; i++ {
		m := metrics[i%len(metrics)]
		gpu := (i / len(metrics)) % 8
		if i%len(metrics) == 0 {
			fmt.Fprintf(&b, "# HELP %s Metric %d.\n# TYPE %s gauge\n", m, i, m)
		}
		fmt.Fprintf(&b, `%s{gpu="%d",UUID="GPU-3f1c2a7e-%04d-4b6e-9c1d-5a8f0e2d7b%02d",device="nvidia%d",modelName="NVIDIA H100 80GB HBM3",Hostname="gpu-node-1",container="trainer",namespace="ml",pod="trainer-0"} %d`+"\n",
			m, gpu, i, gpu, gpu, 1000+i)
	}
	return []byte(b.String()[:size])
}

// startProxy runs a proxy binary in front of upstream, started by start, its log in dir, with
// the extra flags given.
func startProxy(ctx context.Context, bin, upstream, certFile, keyFile, kubeconfig, dir string, start func(*exec.Cmd) error, extra ...string) (*framework.Proxy, error) {
	return framework.StartProxy(ctx, bin, framework.ProxyOptions{Dir: dir, Start: start, Args: append([]string{"--upstream=" + upstream,
		"--tls-cert-file=" + certFile, "--tls-private-key-file=" + keyFile, "--kubeconfig=" + kubeconfig}, extra...)})
}

func stop(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
	}
}

// cpuTime is the user+system CPU time a process has used.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) start after ")".
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	var utime, stime int64
	fmt.Sscan(fields[11], &utime)
	fmt.Sscan(fields[12], &stime)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}

// machine is the busy and total jiffies of all CPUs and the context
// switches since boot.
type machine struct{ busy, total, switches float64 }

func readMachine() machine {
	var m machine
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machine{total: 1}
	}
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.Fields(line)
		switch {
		case len(fields) > 1 && fields[0] == "cpu":
			for i, f := range fields[1:] {
				var v float64
				fmt.Sscan(f, &v)
				m.total += v
				if i != 3 && i != 4 { // idle, iowait
					m.busy += v
				}
			}
		case len(fields) == 2 && fields[0] == "ctxt":
			fmt.Sscan(fields[1], &m.switches)
		}
	}
	return m
}

func rssKB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, "VmRSS:")), "%d", &kb)
			return kb
		}
	}
	return 0
}

type result struct {
	total    int // successful scrapes in the measured window and warm-up
	rps      float64
	p50, p99 time.Duration
	errors   int64
}

func (r result) String() string {
	return fmt.Sprintf("%8.0f req/s, p50 %v, p99 %v, %d errors", r.rps, r.p50.Round(10*time.Microsecond), r.p99.Round(10*time.Microsecond), r.errors)
}

func newClient(ca *testpki.CA) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: ca.Pool()},
		MaxConnsPerHost:     1,
		MaxIdleConnsPerHost: 1,
		// HTTP/1.1 keep-alive, as Prometheus scrapes.
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
	}}
}

// scrape gets u and checks that it received want bytes.
func scrape(c *http.Client, u, token string, want int) error {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || n != int64(want) {
		return fmt.Errorf("status %d, %d bytes", resp.StatusCode, n)
	}
	return nil
}

// load runs conns closed-loop clients for d after a 2s warm-up, each
// scrape expecting want bytes.
func load(ctx context.Context, u string, ca *testpki.CA, token string, conns int, d time.Duration, want int) (result, error) {
	clients := make([]*http.Client, conns)
	for i := range clients {
		clients[i] = newClient(ca)
		if err := scrape(clients[i], u, token, want); err != nil {
			return result{}, err
		}
	}
	var measuring atomic.Bool
	var errs, done atomic.Int64
	stopAt := time.Now().Add(2*time.Second + d)
	lat := make([][]time.Duration, conns)
	var wg sync.WaitGroup
	go func() { time.Sleep(2 * time.Second); measuring.Store(true) }()
	var start time.Time
	var once sync.Once
	for i := range clients {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for time.Now().Before(stopAt) && ctx.Err() == nil {
				t0 := time.Now()
				err := scrape(clients[i], u, token, want)
				if err == nil {
					done.Add(1)
				}
				if measuring.Load() {
					once.Do(func() { start = t0 })
					if err != nil {
						errs.Add(1)
						continue
					}
					lat[i] = append(lat[i], time.Since(t0))
				}
			}
		}(i)
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return result{}, err
	}
	elapsed := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	if len(all) == 0 {
		return result{}, fmt.Errorf("no successful request")
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	return result{
		total:  int(done.Load()),
		rps:    float64(len(all)) / elapsed.Seconds(),
		p50:    all[len(all)/2],
		p99:    all[len(all)*99/100],
		errors: errs.Load(),
	}, nil
}

// burst sends total scrapes from clients concurrent clients, all at once.
func burst(ctx context.Context, u string, ca *testpki.CA, token string, clients, total int) (int64, error) {
	var ok atomic.Int64
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newClient(ca)
			<-gate
			for j := 0; j < total/clients && ctx.Err() == nil; j++ {
				if scrape(c, u, token, payloadSize) == nil {
					ok.Add(1)
				}
			}
		}()
	}
	close(gate)
	wg.Wait()
	return ok.Load(), ctx.Err()
}
