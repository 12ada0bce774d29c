package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rbac-proxy/rbac-proxy/internal/testpki"
	"github.com/rbac-proxy/rbac-proxy/proxy/tenancy"
	"github.com/rbac-proxy/rbac-proxy/proxy/tenancy/tenancytest"
	"github.com/rbac-proxy/rbac-proxy/test/framework"
)

// The tenancy section measures what a tenant's scrape costs rbac-proxy
// beyond a whole-endpoint scrape of the same exposition: two proxies with
// --tenancy=namespace in front of one upstream, one scraped with the
// cluster's token (allowed /metrics: the exposition passes as it came), the
// other with the token of a ServiceAccount allowed get pods in team-a only
// (3 of the 8 GPUs), which gets team-a's series through the filter. Each
// round measures both, and the filter's added CPU per scrape is the
// difference, over the whole-endpoint scrape's own CPU per scrape of that
// round. The filter is also run in this process (tenancy.Serve alone, one
// goroutine), which needs no proxy.

// tenantPayloads render the section's expositions of about a size.
var tenantPayloads = map[string]func(int) string{
	"dcgm": tenancytest.DCGMOfSize,
	"amd":  tenancytest.AMD,
}

var tenantCases = []struct {
	kind, name string
	size       int
}{
	{"dcgm", "dcgm-exporter, 8 GPUs, 64 KB", 64 << 10},
	{"amd", "AMD-shaped, 1 MB", 1 << 20},
}

func tenancySection(ctx context.Context, cp *framework.ControlPlane, bin, clusterToken, certFile, keyFile, kubeconfig, work string, ca *testpki.CA, conns, rounds int, duration time.Duration) error {
	tenantToken, err := setupTenant(ctx, cp)
	if err != nil {
		return err
	}
	type side struct {
		proc     *framework.Proxy
		token    string
		want     int
		cpu, rps []float64
	}
	type tcase struct {
		name, kind, size string
		whole, tenant    side
		serve            testing.BenchmarkResult
	}
	var cases []*tcase
	payloads := map[*tcase]string{}
	for _, c := range tenantCases {
		payload := tenantPayloads[c.kind](c.size)
		filtered, res, err := inProcess(payload)
		if err != nil {
			return err
		}
		tc := &tcase{name: c.name, kind: c.kind, size: fmt.Sprintf("%d KiB → %d KiB", len(payload)>>10, filtered>>10), serve: res}
		tc.whole.token, tc.whole.want = clusterToken, len(payload)
		tc.tenant.token, tc.tenant.want = tenantToken, filtered
		cases = append(cases, tc)
		payloads[tc] = payload
	}
	for _, tc := range cases {
		up, err := startUpstream(len(payloads[tc]), tc.kind, "", "", (*exec.Cmd).Start)
		if err != nil {
			return err
		}
		defer stop(up.cmd)
		for _, s := range []*side{&tc.whole, &tc.tenant} {
			s.proc, err = startProxy(ctx, bin, "http://"+up.addr+"/", certFile, keyFile, kubeconfig, work, nil, "--tenancy=namespace")
			if err != nil {
				fmt.Printf("tenancy: rbac-proxy --tenancy=namespace did not start (%v); only the filter in this process:\n", strings.TrimSpace(err.Error()))
				for _, tc := range cases {
					fmt.Printf("tenancy.Serve, %s, %s: %.0f µs, %d KiB allocated per scrape\n", tc.name, tc.size, float64(tc.serve.NsPerOp())/1e3, tc.serve.AllocedBytesPerOp()>>10)
				}
				return nil
			}
			defer s.proc.Stop()
		}
	}
	fmt.Printf("tenancy: %d keep-alive connections, %d rounds of %v per setup\n", conns, rounds, duration)
	for round := 1; round <= rounds; round++ {
		for _, tc := range cases {
			for _, s := range []*side{&tc.whole, &tc.tenant} {
				cpu0 := cpuTime(s.proc.Pid())
				r, err := load(ctx, s.proc.URL+"/metrics", ca, s.token, conns, duration, s.want)
				if err != nil {
					return fmt.Errorf("tenancy %s: %w", tc.name, err)
				}
				us := float64((cpuTime(s.proc.Pid()) - cpu0).Microseconds()) / float64(r.total)
				s.cpu, s.rps = append(s.cpu, us), append(s.rps, r.rps)
				who := "whole endpoint"
				if s == &tc.tenant {
					who = "tenant (team-a)"
				}
				fmt.Printf("round %d tenancy %-30s %-16s %s, proxy CPU %.0f µs/scrape\n", round, tc.name, who, r, us)
			}
		}
	}
	fmt.Println()
	fmt.Println("| exposition (whole → team-a's) | whole-endpoint scrape: proxy CPU | tenant scrape: proxy CPU | filter's added CPU per scrape | added / whole-endpoint (rounds) | tenancy.Serve in process | tenant req/s | RSS whole / tenant |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	for _, tc := range cases {
		added := make([]float64, rounds)
		ratio := make([]float64, rounds)
		for i := range rounds {
			added[i] = tc.tenant.cpu[i] - tc.whole.cpu[i]
			ratio[i] = added[i] / tc.whole.cpu[i]
		}
		fmt.Printf("| %s, %s | %.0f µs | %.0f µs | %.0f µs | %s | %.0f µs, %d KiB allocated | %.0f | %d / %d MiB |\n", tc.name, tc.size,
			median(tc.whole.cpu), median(tc.tenant.cpu), median(added), spread(ratio),
			float64(tc.serve.NsPerOp())/1e3, tc.serve.AllocedBytesPerOp()>>10, median(tc.tenant.rps),
			rssKB(tc.whole.proc.Pid())>>10, rssKB(tc.tenant.proc.Pid())>>10)
	}
	fmt.Println("(CPU and req/s: each setup's median round; added: the tenant's CPU per scrape less the whole-endpoint scrape's of the same round; ratios: the median of the per-round ratios, then their range)")
	return nil
}

// setupTenant creates namespace team-a with a ServiceAccount allowed to get
// its pods (and nothing else) and returns its token.
func setupTenant(ctx context.Context, cp *framework.ControlPlane) (string, error) {
	const ns = "team-a"
	if _, err := cp.Clientset.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return "", err
	}
	rbac := cp.Clientset.RbacV1()
	if _, err := rbac.Roles(ns).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "pod-reader"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}}},
	}, metav1.CreateOptions{}); err != nil {
		return "", err
	}
	if _, err := rbac.RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "pod-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "pod-reader"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: "tenant"}},
	}, metav1.CreateOptions{}); err != nil {
		return "", err
	}
	time.Sleep(2 * time.Second) // RBAC informer
	return cp.ServiceAccountToken(ctx, ns, "tenant", nil)
}

// inProcess runs tenancy.Serve on payload for team-a in this process and
// returns the size of what team-a gets and the benchmark of one call.
func inProcess(payload string) (int, testing.BenchmarkResult, error) {
	allow := func(_ context.Context, ns string) (bool, error) { return ns == "team-a", nil }
	body := []byte(payload)
	serve := func(w http.ResponseWriter) error {
		res := &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"text/plain; version=0.0.4"}},
			Body: io.NopCloser(bytes.NewReader(body))}
		return tenancy.Serve(context.Background(), w, res, "", tenancy.DefaultNamespaceLabels, allow)
	}
	rec := &countingWriter{h: http.Header{}}
	if err := serve(rec); err != nil {
		return 0, testing.BenchmarkResult{}, fmt.Errorf("filtering the tenancy payload: %w", err)
	}
	res := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = serve(&countingWriter{h: http.Header{}})
		}
	})
	return rec.n, res, nil
}

// countingWriter is a ResponseWriter that counts what it is written.
type countingWriter struct {
	h http.Header
	n int
}

func (c *countingWriter) Header() http.Header         { return c.h }
func (*countingWriter) WriteHeader(int)               {}
func (c *countingWriter) Write(b []byte) (int, error) { c.n += len(b); return len(b), nil }

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// spread is the median of v, then its lowest and highest values.
func spread(v []float64) string {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return fmt.Sprintf("%.2f× (%.2f–%.2f)", s[len(s)/2], s[0], s[len(s)-1])
}
