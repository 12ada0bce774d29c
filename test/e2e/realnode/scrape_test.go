package realnode

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rbac-proxy/rbac-proxy/test/framework"
)

// jobsOf is the regexp of the scraper's jobs that must reach every target.
func jobsOf(s scraper) (string, int) {
	var names []string
	for _, j := range s.jobs {
		if j.wantError == "" {
			names = append(names, j.name)
		}
	}
	return strings.Join(names, "|"), len(names)
}

// allowed is the scraper whose jobs get in.
func allowed() scraper {
	for _, s := range scrapers {
		if s.rights {
			return s
		}
	}
	panic("no scraper with rights")
}

// testScrapes: Prometheus' `up` is 1 for every job and exporter Pod, and the exporter's DCGM
// series are stored for each.
func testScrapes(t *testing.T, e *env) {
	ctx := t.Context()
	s := allowed()
	prom := e.proms[s.name]
	jobs, n := jobsOf(s)
	want := n * len(e.targets)
	start := time.Now()
	var up []sample
	err := framework.Eventually(ctx, 60*time.Second, fmt.Sprintf("up = 1 for %d targets", want), func(ctx context.Context) (bool, error) {
		var err error
		up, err = prom.query(ctx, fmt.Sprintf(`up{job=~%q} == 1`, jobs))
		if err != nil {
			return false, err
		}
		return len(up) == want, nil
	})
	if err != nil {
		targets, _ := prom.targets(ctx)
		t.Fatalf("%v; up: %v; targets: %+v", err, up, targets)
	}
	// Every job scrapes each Pod's IP on the exporter's own port: the proxy's in takeover mode,
	// the app's, redirected to the proxy, in redirect mode.
	for _, j := range s.jobs {
		if j.wantError != "" {
			continue
		}
		var got, wantAddrs []string
		for _, u := range up {
			if u.Metric["job"] == j.name {
				got = append(got, u.Metric["instance"])
			}
		}
		for _, tg := range e.targets {
			wantAddrs = append(wantAddrs, tg.address())
		}
		sort.Strings(got)
		sort.Strings(wantAddrs)
		if strings.Join(got, ",") != strings.Join(wantAddrs, ",") {
			t.Errorf("job %s scrapes %v, want the Pods' %v", j.name, got, wantAddrs)
		}
	}
	figure(t, "Prometheus Ready → up = 1 on every target", "%s (%d targets: %d jobs × %d Pod IPs)", time.Since(start).Round(100*time.Millisecond), want, n, len(e.targets))

	series, err := prom.query(ctx, fmt.Sprintf(`count by (job, workload) ({__name__=~"DCGM_FI_.+", job=~%q})`, jobs))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, s := range series {
		got[s.Metric["job"]+"/"+s.Metric["workload"]] = s.number()
	}
	var rows []string
	for _, j := range s.jobs {
		if j.wantError != "" {
			continue
		}
		for _, tg := range e.targets {
			key := j.name + "/" + tg.workload.name
			if got[key] == 0 {
				t.Errorf("no DCGM series stored for job %s, target %s (%s)", j.name, tg.workload.name, tg.address())
			}
			rows = append(rows, fmt.Sprintf("%s=%v", key, got[key]))
		}
	}
	sort.Strings(rows)
	figure(t, "DCGM series stored per job/workload", "%s", strings.Join(rows, ", "))

	// The proxies verify the projected token themselves (token-verification: local): scrapes
	// cost the API server no TokenReview, and SubjectAccessReviews only as their cache expires.
	reviews := func() (int, int) {
		tr, err := cp.RequestsTotal(ctx, "tokenreviews")
		if err != nil {
			t.Fatal(err)
		}
		sar, err := cp.RequestsTotal(ctx, "subjectaccessreviews")
		if err != nil {
			t.Fatal(err)
		}
		return tr, sar
	}
	const window = 5 * time.Second
	tr0, sar0 := reviews()
	time.Sleep(window)
	tr1, sar1 := reviews()
	if tr1 != tr0 {
		t.Errorf("%d TokenReviews in %s of scrapes, want 0: the proxies verify the projected token locally", tr1-tr0, window)
	}
	figure(t, fmt.Sprintf("API server reviews during %s of scrapes (%d targets, every %s)", window, want, scrapeInterval), "TokenReviews %d, SubjectAccessReviews %d", tr1-tr0, sar1-sar0)
}

// testRefusals: the Prometheus whose ServiceAccount has no rights is refused 403 with its
// token and 401 without credentials on every target, as its own /api/v1/targets says.
func testRefusals(t *testing.T, e *env) {
	ctx := t.Context()
	for _, s := range scrapers {
		if s.rights {
			continue
		}
		prom := e.proms[s.name]
		var targets []activeTarget
		err := framework.Eventually(ctx, 60*time.Second, "every target of "+s.name+" scraped", func(ctx context.Context) (bool, error) {
			var err error
			targets, err = prom.targets(ctx)
			if err != nil {
				return false, err
			}
			for _, tg := range targets {
				if tg.LastScrape.IsZero() || tg.Health == "unknown" {
					return false, nil
				}
			}
			return len(targets) == len(s.jobs)*len(e.targets), nil
		})
		if err != nil {
			t.Fatalf("%v: %+v", err, targets)
		}
		for _, j := range s.jobs {
			for _, tg := range targets {
				if tg.Labels["job"] != j.name {
					continue
				}
				if tg.Health != "down" || !strings.Contains(tg.LastError, j.wantError) {
					t.Errorf("%s job %s, %s: health %s, lastError %q; want down with %q", s.name, j.name, tg.ScrapeURL, tg.Health, tg.LastError, j.wantError)
					continue
				}
				t.Logf("%s job %s (%s), %s: %s", s.name, j.name, j.cred, tg.ScrapeURL, tg.LastError)
			}
		}
	}
}
