package main

import (
	"bufio"
	"bytes"
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
)

// reviewCounts are the API server's own apiserver_request_total for
// TokenReviews and SubjectAccessReviews, every code summed: what it
// received, answered or not.
type reviewCounts struct{ tokens, sars float64 }

func readReviewCounts(ctx context.Context, cs kubernetes.Interface) (reviewCounts, error) {
	body, err := cs.CoreV1().RESTClient().Get().AbsPath("/metrics").SetHeader("Accept", "text/plain").DoRaw(ctx)
	if err != nil {
		return reviewCounts{}, err
	}
	var c reviewCounts
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			continue
		}
		switch {
		case strings.Contains(line, `resource="tokenreviews"`):
			c.tokens += v
		case strings.Contains(line, `resource="subjectaccessreviews"`):
			c.sars += v
		}
	}
	return c, sc.Err()
}

// sample is the counts at an instant.
type sample struct {
	at time.Time
	reviewCounts
}

// sampler reads the API server's counters every interval.
type sampler struct {
	mu      sync.Mutex
	samples []sample
	err     error
}

func startSampler(ctx context.Context, cs kubernetes.Interface, every time.Duration) *sampler {
	s := &sampler{}
	go func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			// Stamped when asked: the API server gathers its metrics as the
			// request arrives, and a busy one can take seconds to send them.
			at := time.Now()
			c, err := readReviewCounts(ctx, cs)
			s.mu.Lock()
			if err != nil && ctx.Err() == nil {
				s.err = err
			} else if err == nil {
				s.samples = append(s.samples, sample{at, c})
			}
			s.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// rates are the reviews per second over a window: the mean, and the peak
// of one sampling interval.
type rates struct {
	meanTR, peakTR, meanSAR, peakSAR float64
	totalTR, totalSAR                float64
	// samples is how many samples the window holds; under two, it has
	// no rates: the API server did not answer its /metrics.
	samples int
}

// Err is the sampler's last failure to read the metrics, if any.
func (s *sampler) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// window is the rates between from and to, from the samples inside it.
func (s *sampler) window(from, to time.Time) rates {
	s.mu.Lock()
	defer s.mu.Unlock()
	var in []sample
	for _, x := range s.samples {
		if !x.at.Before(from) && !x.at.After(to) {
			in = append(in, x)
		}
	}
	r := rates{samples: len(in)}
	if len(in) < 2 {
		return r
	}
	for i := 1; i < len(in); i++ {
		dt := in[i].at.Sub(in[i-1].at).Seconds()
		r.peakTR = max(r.peakTR, (in[i].tokens-in[i-1].tokens)/dt)
		r.peakSAR = max(r.peakSAR, (in[i].sars-in[i-1].sars)/dt)
	}
	first, last := in[0], in[len(in)-1]
	dt := last.at.Sub(first.at).Seconds()
	r.totalTR, r.totalSAR = last.tokens-first.tokens, last.sars-first.sars
	r.meanTR, r.meanSAR = r.totalTR/dt, r.totalSAR/dt
	return r
}
