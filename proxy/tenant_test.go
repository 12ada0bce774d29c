package proxy

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rbac-proxy/rbac-proxy/internal/sample"
	"github.com/rbac-proxy/rbac-proxy/proxy/config"
	"github.com/rbac-proxy/rbac-proxy/proxy/internal/fakeapi"
	"github.com/rbac-proxy/rbac-proxy/proxy/review"
)

// tenantGPUs are a node's GPUs: two of team-a, one of team-b, one idle.
var tenantGPUs = []sample.GPU{
	{UUID: "GPU-a0", PCIBusID: "00000000:18:00.0", Util: 87, Temp: 64, Namespace: "team-a", Pod: "train-0", Container: "pytorch"},
	{UUID: "GPU-a1", PCIBusID: "00000000:2A:00.0", Util: 92, Temp: 67, Namespace: "team-a", Pod: "train-0", Container: "pytorch"},
	{UUID: "GPU-b0", PCIBusID: "00000000:3A:00.0", Util: 12, Temp: 41, Namespace: "team-b", Pod: "serve-7", Container: "triton"},
	{UUID: "GPU-idle", PCIBusID: "00000000:5D:00.0", Temp: 36},
}

// serving answers with body as contentType.
func serving(contentType, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", contentType)
		_, _ = io.WriteString(w, body)
	}
}

// tenantAPI knows four callers: cluster (allowed /metrics), team-a (may get pods in team-a),
// both (team-a and team-b), nobody (no namespace); a review of namespace "broken" fails.
func tenantAPI(t *testing.T) (*fakeapi.API, *review.Clients) {
	api := fakeapi.New(t)
	for _, u := range []string{"cluster", "team-a", "both", "nobody"} {
		api.AddToken(u, authnv1.UserInfo{Username: u})
	}
	api.SetAllow(func(s authzv1.SubjectAccessReviewSpec) bool {
		if n := s.NonResourceAttributes; n != nil {
			return s.User == "cluster" && n.Path == "/metrics" && n.Verb == "get"
		}
		r := s.ResourceAttributes
		if r.Verb != "get" || r.Resource != "pods" || r.Group != "" {
			return false
		}
		return s.User == "team-a" && r.Namespace == "team-a" || s.User == "both" && (r.Namespace == "team-a" || r.Namespace == "team-b")
	})
	clients := clientsOf(t, api)
	access := clients.Access
	clients.Access = sarFunc(func(ctx context.Context, sar *authzv1.SubjectAccessReview, o metav1.CreateOptions) (*authzv1.SubjectAccessReview, error) {
		if ra := sar.Spec.ResourceAttributes; ra != nil && ra.Namespace == "broken" {
			return nil, errors.New("the API server is unreachable")
		}
		return access.Create(ctx, sar, o)
	})
	return api, clients
}

type sarFunc func(context.Context, *authzv1.SubjectAccessReview, metav1.CreateOptions) (*authzv1.SubjectAccessReview, error)

func (f sarFunc) Create(ctx context.Context, sar *authzv1.SubjectAccessReview, o metav1.CreateOptions) (*authzv1.SubjectAccessReview, error) {
	return f(ctx, sar, o)
}

// startTenancy runs a proxy with --tenancy=namespace (unless args turn it off) in front of x.
func startTenancy(t *testing.T, x *recorder, args ...string) (*testEnv, *fakeapi.API) {
	t.Helper()
	e := newTestEnv(t)
	up := httptest.NewServer(x)
	t.Cleanup(up.Close)
	api, clients := tenantAPI(t)
	f := config.NewFlags("rbac-proxy")
	all := append([]string{"--secure-listen-address=127.0.0.1:0", "--upstream=" + up.URL + "/", "--tenancy=namespace"}, e.servingFlags()...)
	if err := f.Parse(append(all, args...)); err != nil {
		t.Fatal(err)
	}
	cfg, err := f.Config()
	if err != nil {
		t.Fatal(err)
	}
	e.startConfig(cfg, Options{Clients: clients})
	return e, api
}

// scrape is one GET of /metrics as token, with the given headers.
type scraped struct {
	code    int
	header  http.Header
	body    string
	readErr error // the body did not end cleanly
}

func (e *testEnv) scrape(t *testing.T, method, token string, header http.Header) scraped {
	t.Helper()
	req, err := http.NewRequest(method, e.base+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+token)
	c := e.client()
	c.Transport.(*http.Transport).DisableCompression = true // the test reads what was sent
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s /metrics as %s: %v", method, token, err)
	}
	defer resp.Body.Close()
	b, readErr := io.ReadAll(resp.Body)
	return scraped{resp.StatusCode, resp.Header, string(b), readErr}
}

// namespacesOf lists the namespace of each series line of an exposition ("" for none).
func namespacesOf(body string) map[string]int {
	out := map[string]int{}
	for _, l := range strings.Split(body, "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		ns := ""
		if _, rest, ok := strings.Cut(l, `namespace="`); ok {
			ns, _, _ = strings.Cut(rest, `"`)
		}
		out[ns]++
	}
	return out
}

// TestTenantScrapes: the allowed caller gets the upstream's bytes as they are (no parsing,
// protobuf included, its own Accept forwarded); a tenant gets the
// series of its namespaces only, in the format it asked for, and the HELP/TYPE of their
// families only; a caller with no namespace gets the denial's 403; without --tenancy a tenant
// gets 403 as before.
func TestTenantScrapes(t *testing.T) {
	text := sample.Exposition("node-1", tenantGPUs, sample.Text)
	om := sample.Exposition("node-1", tenantGPUs, sample.OpenMetrics)
	x := &recorder{serve: func(w http.ResponseWriter, r *http.Request) {
		switch accept := r.Header.Get("Accept"); {
		case strings.HasPrefix(accept, "application/vnd.google.protobuf"):
			w.Header().Set("Content-Type", "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited")
			_, _ = io.WriteString(w, "\x00protobuf-bytes")
		case strings.HasPrefix(accept, "application/openmetrics-text"):
			serving(sample.OpenMetricsContentType, om)(w, r)
		default:
			serving(sample.ContentType, text)(w, r)
		}
	}}
	e, _ := startTenancy(t, x)
	off, _ := startTenancy(t, x, "--tenancy=")
	protobuf := http.Header{"Accept": {"application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"}}
	prom242 := http.Header{"Accept": {"application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"}}

	for _, tc := range []struct {
		name   string
		env    *testEnv
		token  string
		header http.Header
		code   int
		want   map[string]int // series per namespace; nil: the body is wantBody
		body   string
		accept string // what the upstream was asked for
	}{
		{"cluster: the exposition as it is", e, "cluster", nil, 200, nil, text, ""},
		{"cluster: protobuf passes through", e, "cluster", protobuf, 200, nil, "\x00protobuf-bytes", protobuf.Get("Accept")},
		{"team-a: its two GPUs", e, "team-a", nil, 200, map[string]int{"team-a": 8}, "", "text/plain;version=0.0.4"},
		{"team-a asking for protobuf gets text", e, "team-a", protobuf, 200, map[string]int{"team-a": 8}, "", "text/plain;version=0.0.4"},
		{"team-a as Prometheus 2.42: OpenMetrics", e, "team-a", prom242, 200, map[string]int{"team-a": 8}, "", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"},
		{"both: three GPUs", e, "both", nil, 200, map[string]int{"team-a": 8, "team-b": 4}, "", "text/plain;version=0.0.4"},
		{"nobody: 403", e, "nobody", nil, 403, nil, "Forbidden (user=nobody, verb=get path=/metrics)\n", "text/plain;version=0.0.4"},
		{"without tenancy team-a gets 403", off, "team-a", nil, 403, nil, "Forbidden (user=team-a, verb=get path=/metrics)\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := int(x.hits.Load())
			got := tc.env.scrape(t, http.MethodGet, tc.token, tc.header)
			if got.code != tc.code || got.readErr != nil {
				t.Fatalf("status %d (read error %v), want %d: %q", got.code, got.readErr, tc.code, got.body)
			}
			if tc.want == nil && got.body != tc.body {
				t.Fatalf("body %q, want %q", got.body, tc.body)
			}
			if tc.want != nil {
				if n := namespacesOf(got.body); fmt.Sprint(n) != fmt.Sprint(tc.want) {
					t.Fatalf("series per namespace %v, want %v:\n%s", n, tc.want, got.body)
				}
				families := strings.Count(got.body, "# TYPE ")
				if families != len(sample.Families()) || strings.Count(got.body, "# HELP ") != families {
					t.Fatalf("%d families' TYPE, want %d with their HELP:\n%s", families, len(sample.Families()), got.body)
				}
				om := strings.HasPrefix(tc.accept, "application/openmetrics-text")
				if ct := got.header.Get("Content-Type"); om != strings.HasPrefix(ct, "application/openmetrics-text") || strings.HasSuffix(got.body, "# EOF\n") != om {
					t.Fatalf("Content-Type %q and a body ending %q; OpenMetrics asked for: %v", ct, got.body[max(0, len(got.body)-10):], om)
				}
			}
			if tc.accept == "" && tc.env == off {
				if int(x.hits.Load()) != before {
					t.Fatal("the upstream was asked for a denied caller")
				}
				return
			}
			if a := x.last(t).Header.Get("Accept"); tc.accept != "" && a != tc.accept {
				t.Fatalf("the upstream was asked for %q, want %q", a, tc.accept)
			}
		})
	}
}

// gzipped is s compressed.
func gzipped(t testing.TB, s string) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := io.WriteString(zw, s); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestTenantAttacks are what a tenant and a hostile upstream can try. Each must end in the
// filtered exposition of the tenant's own namespaces, or in a refusal that shows none of it.
func TestTenantAttacks(t *testing.T) {
	text := sample.Exposition("node-1", tenantGPUs, sample.Text)
	const textType = "text/plain; version=0.0.4"
	gzipText := gzipped(t, text)
	bomb := gzipped(t, strings.Repeat("a", 64<<20)) // 64 MiB of one line, in 64 KiB
	for _, tc := range []struct {
		name     string
		upstream http.HandlerFunc
		method   string
		header   http.Header
		args     []string
		code     int
		want     map[string]int // series per namespace of a 200
		check    func(t *testing.T, got scraped, seen seenRequest)
	}{
		{name: "Accept-Encoding gzip: the upstream is asked for none, the tenant gets gzip of the filtered",
			upstream: serving(textType, text), header: http.Header{"Accept-Encoding": {"gzip"}}, code: 200,
			check: func(t *testing.T, got scraped, seen seenRequest) {
				if ae := seen.Header.Values("Accept-Encoding"); len(ae) != 0 {
					t.Errorf("the upstream was asked for %q", ae)
				}
				if got.header.Get("Content-Encoding") != "gzip" {
					t.Fatalf("Content-Encoding %q", got.header.Get("Content-Encoding"))
				}
				zr, err := gzip.NewReader(strings.NewReader(got.body))
				if err != nil {
					t.Fatal(err)
				}
				plain, err := io.ReadAll(zr)
				if err != nil || fmt.Sprint(namespacesOf(string(plain))) != "map[team-a:8]" {
					t.Fatalf("decoded %v: %s", err, plain)
				}
			}},
		{name: "Accept-Encoding gzip;q=0, br: identity", upstream: serving(textType, text),
			header: http.Header{"Accept-Encoding": {"gzip;q=0, br"}}, code: 200, want: map[string]int{"team-a": 8},
			check: func(t *testing.T, got scraped, _ seenRequest) {
				if ce := got.header.Get("Content-Encoding"); ce != "" {
					t.Fatalf("Content-Encoding %q", ce)
				}
			}},
		{name: "conditional and range headers are not forwarded", upstream: serving(textType, text),
			header: http.Header{"Range": {"bytes=0-99"}, "If-None-Match": {`"x"`}, "If-Modified-Since": {"Tue, 01 Dec 2026 00:00:00 GMT"}},
			code:   200, want: map[string]int{"team-a": 8},
			check: func(t *testing.T, _ scraped, seen seenRequest) {
				for _, k := range []string{"Range", "If-None-Match", "If-Modified-Since"} {
					if v := seen.Header.Get(k); v != "" {
						t.Errorf("the upstream got %s: %s", k, v)
					}
				}
			}},
		{name: "HEAD: filtered as a GET, no body", upstream: serving(textType, text), method: http.MethodHead, code: 200,
			check: func(t *testing.T, got scraped, seen seenRequest) {
				if seen.Method != http.MethodGet || got.body != "" {
					t.Fatalf("upstream saw %s, body %q", seen.Method, got.body)
				}
			}},
		{name: "POST keeps its 403, the upstream never asked", upstream: serving(textType, text), method: http.MethodPost, code: 403},
		{name: "an upgrade keeps its 403", upstream: serving(textType, text), args: []string{"--allowed-upgrades=websocket"},
			header: http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}}, code: 403},
		{name: "the upstream sends gzip unasked: decoded and filtered", code: 200, want: map[string]int{"team-a": 8},
			upstream: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", textType)
				w.Header().Set("Content-Encoding", "gzip")
				_, _ = w.Write(gzipText)
			}},
		{name: "gzip bomb: 64 MiB of one line end at the filter's line bound", code: 502,
			upstream: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", textType)
				w.Header().Set("Content-Encoding", "gzip")
				_, _ = w.Write(bomb)
			}},
		{name: "endless withheld series end at the scrape's deadline", code: 504,
			header: http.Header{scrapeTimeoutHeader: {"1"}},
			upstream: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", textType)
				line := []byte(`DCGM_FI_DEV_GPU_TEMP{gpu="0",namespace="team-b"} 41` + "\n")
				for r.Context().Err() == nil {
					if _, err := w.Write(bytes.Repeat(line, 512)); err != nil {
						return
					}
				}
			}},
		{name: "protobuf although text was asked: 502", code: 502,
			upstream: serving("application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited", "\x0a\x04team-a")},
		{name: "HTML: 502", code: 502, upstream: serving("text/html", `<p namespace="team-a">`)},
		{name: "no Content-Type: 502", code: 502, upstream: func(w http.ResponseWriter, _ *http.Request) {
			w.Header()["Content-Type"] = nil
			_, _ = io.WriteString(w, text)
		}},
		{name: "an error status: 502, not its body", code: 502, upstream: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", textType)
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, text)
		}},
		{name: "an invalid exposition: 502", code: 502, upstream: serving(textType, `m{namespace="team-a" 1`+"\n")},
		{name: "a namespace label twice: 502", code: 502, upstream: serving(textType, `m{namespace="team-b",namespace="team-a"} 1`+"\n")},
		// exported_namespace cannot be told from a target's own label: a series is visible only
		// when every namespace label it carries is allowed, so neither label can smuggle one.
		{name: "exported_namespace spoofing: withheld", code: 403,
			upstream: serving(textType, `m{namespace="team-b",exported_namespace="team-a"} 1`+"\n"+`m{namespace="team-a",exported_namespace="team-b"} 2`+"\n")},
		{name: "exported_namespace alone names the namespace", code: 200, want: map[string]int{"team-a": 1},
			upstream: serving(textType, `m{exported_namespace="team-a"} 1`+"\n"+`m{exported_namespace="team-b"} 2`+"\n")},
		{name: "an empty namespace is no namespace, never a cluster-wide review", code: 403,
			upstream: serving(textType, `m{namespace=""} 1`+"\n")},
		{name: "a review that fails before the response: 403, could not be checked", code: 403,
			upstream: serving(textType, `m{namespace="broken"} 1`+"\n"+`m{namespace="team-a"} 1`+"\n"),
			check: func(t *testing.T, got scraped, _ seenRequest) {
				if !strings.Contains(got.body, "authorization could not be checked") {
					t.Fatalf("body %q", got.body)
				}
			}},
		{name: "a review that fails mid-stream: the response is aborted", code: 200,
			upstream: serving(textType, strings.Repeat(`m{namespace="team-a"} 1`+"\n", 8192)+`m{namespace="broken"} 1`+"\n"),
			check:    aborted},
		{name: "an exposition that breaks mid-stream: the response is aborted", code: 200,
			upstream: serving(textType, strings.Repeat(`m{namespace="team-a"} 1`+"\n", 8192)+"m{\n"),
			check:    aborted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := &recorder{serve: tc.upstream}
			e, _ := startTenancy(t, x, tc.args...)
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			start := time.Now()
			got := e.scrape(t, method, "team-a", tc.header)
			if got.code != tc.code {
				t.Fatalf("status %d, want %d: %.300q", got.code, tc.code, got.body)
			}
			if time.Since(start) > 10*time.Second {
				t.Fatalf("took %v", time.Since(start))
			}
			if tc.code != 200 && strings.Contains(got.body, `namespace="`) {
				t.Fatalf("a refusal shows the exposition: %.300q", got.body)
			}
			if tc.want != nil {
				if got.readErr != nil || fmt.Sprint(namespacesOf(got.body)) != fmt.Sprint(tc.want) {
					t.Fatalf("series per namespace %v (read error %v), want %v:\n%.500s", namespacesOf(got.body), got.readErr, tc.want, got.body)
				}
			}
			if (method == http.MethodPost || tc.args != nil) && int(x.hits.Load()) != 0 {
				t.Fatal("the upstream was asked")
			}
			if tc.check != nil {
				var seen seenRequest
				if x.hits.Load() > 0 {
					seen = x.last(t)
				}
				tc.check(t, got, seen)
			}
		})
	}
}

// aborted checks that a begun response did not end as if it were whole.
func aborted(t *testing.T, got scraped, _ seenRequest) {
	t.Helper()
	if got.readErr == nil {
		t.Fatalf("the response ended cleanly after %d bytes: a partial scrape would read as whole", len(got.body))
	}
	if strings.Contains(got.body, "broken") {
		t.Fatal("the series whose review failed was sent")
	}
}

// TestTenantReviewsCachedAcrossScrapes: after the first scrape, a tenant's scrapes make no
// SubjectAccessReview (SARs per scrape after warm-up: 0), and neither do the allowed caller's.
func TestTenantReviewsCachedAcrossScrapes(t *testing.T) {
	x := &recorder{serve: serving(sample.ContentType, sample.Exposition("node-1", tenantGPUs, sample.Text))}
	e, api := startTenancy(t, x)
	for _, token := range []string{"team-a", "both", "nobody", "cluster"} {
		if got := e.scrape(t, http.MethodGet, token, nil); got.code != 200 && token != "nobody" {
			t.Fatalf("%s: %d", token, got.code)
		}
	}
	warm := api.SARs.Load()
	for range 5 {
		for _, token := range []string{"team-a", "both", "nobody", "cluster"} {
			e.scrape(t, http.MethodGet, token, nil)
		}
	}
	if n := api.SARs.Load() - warm; n != 0 {
		t.Fatalf("%d SubjectAccessReviews in 20 scrapes after warm-up (%d to warm up), want 0", n, warm)
	}
	t.Logf("warm-up: %d SubjectAccessReviews for 4 callers (the whole endpoint's for each, and for each of the 3 tenants one per namespace of the exposition, team-a and team-b); then 0 per scrape", warm)
}
