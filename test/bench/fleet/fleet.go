package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rbac-proxy/rbac-proxy/proxy"
	"github.com/rbac-proxy/rbac-proxy/proxy/config"
)

// fleet is N node proxies, each a proxy.Server of its own built from its
// own parsed flags: its own caches, review clients and token admission.
// What they share is client-go's transport to the API server (client-go
// keeps one per TLS configuration, and every instance reads the same
// kubeconfig), so the API server sees a few HTTP/2 connections instead of
// one per node; the reviews it receives are the same.
type fleet struct {
	args  []string
	nodes []atomic.Pointer[http.Handler]
}

func newFleet(n int, args []string) *fleet {
	return &fleet{args: args, nodes: make([]atomic.Pointer[http.Handler], n)}
}

// build makes a fresh set of N proxies (empty caches) and then swaps all of
// them in at once: a simultaneous restart of every node.
func (f *fleet) build() (time.Duration, error) {
	t0 := time.Now()
	fresh := make([]http.Handler, len(f.nodes))
	for i := range fresh {
		flags := config.NewFlags("rbac-proxy")
		if err := flags.Parse(f.args); err != nil {
			return 0, err
		}
		cfg, err := flags.Config()
		if err != nil {
			return 0, err
		}
		srv, err := proxy.New(cfg, proxy.Options{})
		if err != nil {
			return 0, fmt.Errorf("proxy %d: %w", i, err)
		}
		h := srv.Handler()
		fresh[i] = h
	}
	for i := range fresh {
		f.nodes[i].Store(&fresh[i])
	}
	return time.Since(t0), nil
}

// heapInUse is the Go heap in use after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// scrapeCounts are what the scrapers got: 502 from the proxy means the
// request was authenticated and authorized and then reached the upstream
// step (see main.go: the upstream is a closed port); anything else is a
// refusal or a failed review.
type scrapeCounts struct {
	passed, refused atomic.Int64
}

// prometheus scrapes every node as each of its identities every interval,
// each (node, identity) target at a phase of its own, as Prometheus spreads
// its targets over the interval. The nodes join over ramp, as a fleet rolls
// out, so that the steady state is reached without the burst the restart
// measures. It runs until ctx ends.
func (f *fleet) prometheus(ctx context.Context, tokens []string, interval, ramp time.Duration, c *scrapeCounts) *sync.WaitGroup {
	var wg sync.WaitGroup
	for n := range f.nodes {
		join := time.Duration(float64(ramp) * float64(n) / float64(len(f.nodes)))
		for i, tok := range tokens {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Each identity scrapes from an address of its own, as
				// separate Prometheus jobs or replicas would.
				remote := fmt.Sprintf("10.0.%d.%d:9090", i/250, i%250+1)
				select {
				case <-ctx.Done():
					return
				case <-time.After(join + rand.N(interval)):
				}
				tick := time.NewTicker(interval)
				defer tick.Stop()
				for {
					f.scrape(n, tok, remote, c)
					select {
					case <-ctx.Done():
						return
					case <-tick.C:
					}
				}
			}()
		}
	}
	return &wg
}

func (f *fleet) scrape(n int, token, remote string, c *scrapeCounts) {
	h := *f.nodes[n].Load()
	req := httptest.NewRequest(http.MethodGet, "https://node/metrics", nil)
	req.RemoteAddr = remote
	req.Header.Set("Authorization", "Bearer "+token)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code == http.StatusBadGateway {
		c.passed.Add(1)
	} else {
		c.refused.Add(1)
	}
}
