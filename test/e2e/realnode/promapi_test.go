package realnode

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// promAPI is a Prometheus' HTTP API at its Pod IP, as the test reaches it from the host.
type promAPI struct {
	base string
	http *http.Client
}

func newPromAPI(podIP string) *promAPI {
	return &promAPI{
		base: "http://" + net.JoinHostPort(podIP, strconv.Itoa(prometheusPort)),
		http: &http.Client{Timeout: 10 * time.Second},
	}
}

// get GETs path with query and decodes the API's envelope's data into out.
func (p *promAPI) get(ctx context.Context, path string, query url.Values, out any) error {
	res, body, err := fetch(ctx, p.http, p.base+path+"?"+query.Encode())
	if err != nil {
		return err
	}
	var env struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
		Error  string          `json:"error"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("GET %s: %d %.200s: %w", path, res.StatusCode, body, err)
	}
	if env.Status != "success" {
		return fmt.Errorf("GET %s: %s", path, env.Error)
	}
	return json.Unmarshal(env.Data, out)
}

// fetch GETs url with c and returns the response (its body closed) and the body.
func fetch(ctx context.Context, c *http.Client, url string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, nil, err
	}
	res, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return res, body, err
}

// sample is one series of an instant vector, or of a range vector's matrix.
type sample struct {
	Metric map[string]string `json:"metric"`
	Value  []any             `json:"value"`
	Values [][]any           `json:"values"`
}

// number is the float of an instant sample.
func (s sample) number() float64 { return pointValue(s.Value) }

// pointValue reads [unix time, "value"].
func pointValue(p []any) float64 {
	if len(p) != 2 {
		return 0
	}
	str, _ := p[1].(string)
	f, _ := strconv.ParseFloat(str, 64)
	return f
}

// query runs an instant query; a range selector (up[30s]) returns the raw samples.
func (p *promAPI) query(ctx context.Context, expr string) ([]sample, error) {
	var data struct {
		Result []sample `json:"result"`
	}
	if err := p.get(ctx, "/api/v1/query", url.Values{"query": {expr}}, &data); err != nil {
		return nil, err
	}
	return data.Result, nil
}

// upSamples reads the raw samples of the up series sel over the last seconds: how many series
// and samples there were, and each sample that was not 1 (a failed scrape), described.
func (p *promAPI) upSamples(ctx context.Context, sel string, seconds int) (series, samples int, failures []string, err error) {
	result, err := p.query(ctx, fmt.Sprintf("%s[%ds]", sel, seconds))
	if err != nil {
		return 0, 0, nil, err
	}
	for _, s := range result {
		for _, v := range s.Values {
			samples++
			if pointValue(v) != 1 {
				failures = append(failures, fmt.Sprintf("up = %v at %v for job %s, %s", pointValue(v), v[0], s.Metric["job"], s.Metric["instance"]))
			}
		}
	}
	return len(result), samples, failures, nil
}

// activeTarget is one entry of /api/v1/targets.
type activeTarget struct {
	Labels     map[string]string `json:"labels"`
	ScrapeURL  string            `json:"scrapeUrl"`
	Health     string            `json:"health"`
	LastError  string            `json:"lastError"`
	LastScrape time.Time         `json:"lastScrape"`
}

func (p *promAPI) targets(ctx context.Context) ([]activeTarget, error) {
	var data struct {
		ActiveTargets []activeTarget `json:"activeTargets"`
	}
	if err := p.get(ctx, "/api/v1/targets", url.Values{"state": {"active"}}, &data); err != nil {
		return nil, err
	}
	return data.ActiveTargets, nil
}
