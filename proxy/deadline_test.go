package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
	"github.com/rbac-proxy/rbac-proxy/proxy/internal/fakeapi"
)

func TestExchangeTimeout(t *testing.T) {
	const fallback = 15 * time.Second
	for _, tc := range []struct {
		name   string
		values []string
		want   time.Duration
	}{
		{"no header", nil, fallback},
		{"whole seconds", []string{"10"}, 10 * time.Second},
		{"fractional seconds", []string{"2.5"}, 2500 * time.Millisecond},
		{"longer than the flag", []string{"120"}, 2 * time.Minute},
		// Anyone may send it, also unauthenticated: it cannot hold an exchange for ever.
		{"beyond the cap", []string{"9000000000"}, maxScrapeTimeout},
		{"spaces around", []string{" 3 "}, 3 * time.Second},
		{"zero", []string{"0"}, fallback},
		{"below a nanosecond", []string{"0.0000000001"}, fallback},
		{"negative", []string{"-1"}, fallback},
		{"not a number", []string{"soon"}, fallback},
		{"empty", []string{""}, fallback},
		{"exponent", []string{"1e3"}, fallback},
		{"hex", []string{"0x10"}, fallback},
		{"underscores", []string{"1_0"}, fallback},
		{"infinity", []string{"Inf"}, fallback},
		{"NaN", []string{"NaN"}, fallback},
		{"two points", []string{"1.2.3"}, fallback},
		{"beyond a Duration", []string{"99999999999999999999"}, fallback},
		{"twice", []string{"1", "100"}, fallback},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tc.values {
				h.Add(scrapeTimeoutHeader, v)
			}
			if got := exchangeTimeout(h, fallback); got != tc.want {
				t.Fatalf("exchangeTimeout(%q) = %v, want %v", tc.values, got, tc.want)
			}
		})
	}
	if got := exchangeTimeout(http.Header{}, 0); got != 0 {
		t.Fatalf("--upstream-timeout=0 without a header gave %v, want no bound", got)
	}
}

// hangingUpstream answers by path: /hang never answers, /midway starts a
// stream and stops, /exposition starts an exposition within the prefetch
// limit and stops, /slow answers after 500 ms. It counts the requests whose
// context the proxy cancelled.
type hangingUpstream struct{ cancelled atomic.Int64 }

func (u *hangingUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	switch r.URL.Path {
	case "/slow":
		time.Sleep(500 * time.Millisecond)
		_, _ = io.WriteString(w, "slow but whole")
		return
	case "/midway":
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = io.WriteString(w, "first part")
		w.(http.Flusher).Flush()
	case "/exposition":
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = io.WriteString(w, "up 1\n")
		w.(http.Flusher).Flush()
	}
	select {
	case <-r.Context().Done():
		u.cancelled.Add(1)
	case <-time.After(20 * time.Second):
	}
}

// TestUpstreamDeadline is issue 15's item 8: a hung upstream holds a
// scrape only until its deadline, for a scrape and a request with a body,
// over http and https, before and after the response started.
func TestUpstreamDeadline(t *testing.T) {
	api := fakeapi.New(t)
	api.AddToken("tok", authnv1.UserInfo{Username: "alice"})
	api.SetAllow(func(authzv1.SubjectAccessReviewSpec) bool { return true })
	for _, kind := range []struct {
		name   string
		tls    bool
		method string
	}{
		{"http GET", false, http.MethodGet},
		{"http POST with a body", false, http.MethodPost},
		{"https GET", true, http.MethodGet},
	} {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			hang := &hangingUpstream{}
			up := httptest.NewUnstartedServer(hang)
			if kind.tls {
				up.StartTLS()
			} else {
				up.Start()
			}
			t.Cleanup(up.Close)
			// One proxy per --upstream-timeout, shared by the cases below.
			envs := map[string]*testEnv{}
			kindT := t
			start := func(_ *testing.T, flag string) *testEnv {
				if e, ok := envs[flag]; ok {
					return e
				}
				e := newTestEnv(kindT)
				envs[flag] = e
				args := []string{"--upstream=" + up.URL + "/", "--upstream-timeout=" + flag}
				if kind.tls {
					args = append(args, "--upstream-insecure-skip-verify")
				}
				e.start(api, args...)
				return e
			}
			do := func(t *testing.T, e *testEnv, ctx context.Context, path string, header http.Header) (*http.Response, error) {
				var body io.Reader
				if kind.method == http.MethodPost {
					body = strings.NewReader("a body")
				}
				req, err := http.NewRequestWithContext(ctx, kind.method, e.base+path, body)
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Authorization", "Bearer tok")
				for k, v := range header {
					req.Header[k] = v
				}
				return e.client().Do(req)
			}
			scrapeTimeout := func(s string) http.Header { return http.Header{scrapeTimeoutHeader: {s}} }

			for _, tc := range []struct {
				name   string
				flag   string
				path   string
				header http.Header
				want   int // 0: a 200 whose body breaks off
			}{
				{"no answer, by the flag", "300ms", "/hang", nil, http.StatusGatewayTimeout},
				{"no answer, by the scrape timeout with the flag off", "0", "/hang", scrapeTimeout("0.3"), http.StatusGatewayTimeout},
				{"no answer, the scrape timeout shorter than the flag", "1m", "/hang", scrapeTimeout("0.3"), http.StatusGatewayTimeout},
				{"no answer, a bad scrape timeout falls back to the flag", "300ms", "/hang", scrapeTimeout("1e9"), http.StatusGatewayTimeout},
				{"an exposition that stops before its end", "300ms", "/exposition", nil, http.StatusGatewayTimeout},
				{"a stream that stops midway", "300ms", "/midway", nil, 0},
			} {
				t.Run(tc.name, func(t *testing.T) {
					e := start(t, tc.flag)
					before, timeouts := hang.cancelled.Load(), counterValue(t, e.srv.metrics.upstreamTimeouts)
					t0 := time.Now()
					resp, err := do(t, e, context.Background(), tc.path, tc.header)
					if err != nil {
						t.Fatal(err)
					}
					body, readErr := io.ReadAll(resp.Body)
					resp.Body.Close()
					elapsed := time.Since(t0)
					if elapsed < 250*time.Millisecond || elapsed > 5*time.Second {
						t.Errorf("answered after %v, want about 300ms", elapsed)
					}
					if tc.want != 0 && resp.StatusCode != tc.want {
						t.Errorf("status %d %q, want %d", resp.StatusCode, body, tc.want)
					}
					if tc.want == 0 && (resp.StatusCode != http.StatusOK || readErr == nil || string(body) != "first part") {
						t.Errorf("status %d, body %q, error %v; want 200 and \"first part\" cut off", resp.StatusCode, body, readErr)
					}
					if n := counterValue(t, e.srv.metrics.upstreamTimeouts) - timeouts; n != 1 {
						t.Errorf("rbac_proxy_upstream_timeouts_total grew by %v, want 1", n)
					}
					waitFor(t, "the upstream to see its request cancelled", func() bool { return hang.cancelled.Load() > before })
				})
			}

			t.Run("a slow answer within the scrape timeout", func(t *testing.T) {
				e := start(t, "200ms")
				timeouts := counterValue(t, e.srv.metrics.upstreamTimeouts)
				resp, err := do(t, e, context.Background(), "/slow", scrapeTimeout("2"))
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || string(body) != "slow but whole" {
					t.Fatalf("status %d %q, want 200: the scrape timeout is longer than the flag", resp.StatusCode, body)
				}
				if n := counterValue(t, e.srv.metrics.upstreamTimeouts) - timeouts; n != 0 {
					t.Errorf("rbac_proxy_upstream_timeouts_total grew by %v, want 0", n)
				}
			})

			t.Run("a client that goes away cancels the upstream request", func(t *testing.T) {
				e := start(t, "0")
				before, timeouts := hang.cancelled.Load(), counterValue(t, e.srv.metrics.upstreamTimeouts)
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(200*time.Millisecond, cancel)
				if _, err := do(t, e, ctx, "/hang", nil); !errors.Is(err, context.Canceled) {
					t.Fatalf("got %v, want the client's own cancellation", err)
				}
				waitFor(t, "the upstream to see its request cancelled", func() bool { return hang.cancelled.Load() > before })
				if n := counterValue(t, e.srv.metrics.upstreamTimeouts) - timeouts; n != 0 {
					t.Errorf("rbac_proxy_upstream_timeouts_total grew by %v for a client that left, want 0", n)
				}
			})
		})
	}
}

// TestBoundedBodyEndsInErrorPastTheDeadline: a body that ends properly
// after the deadline passed (the upstream saw the proxy leave and finished
// its response) still ends in an error, so a cut scrape never looks whole.
func TestBoundedBodyEndsInErrorPastTheDeadline(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cause error
		want  error
	}{
		{"within the deadline", nil, io.EOF},
		{"past the deadline", errUpstreamTimeout, errUpstreamTimeout},
		{"the client went away", context.Canceled, io.EOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancelCause(context.Background())
			if tc.cause != nil {
				cancel(tc.cause)
			}
			defer cancel(nil)
			b := &boundedBody{ReadCloser: io.NopCloser(strings.NewReader("up 1\n")), ctx: ctx}
			got, err := io.ReadAll(struct{ io.Reader }{b}) // ReadAll hides io.EOF: read by hand below
			if string(got) != "up 1\n" {
				t.Fatalf("read %q, %v", got, err)
			}
			if _, err := b.Read(make([]byte, 1)); !errors.Is(err, tc.want) {
				t.Fatalf("the end of the body: %v, want %v", err, tc.want)
			}
		})
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestUpstreamDeadlineEndsAtAProtocolSwitch: the deadline bounds the wait
// for an upgrade's 101, and not the tunnel after it, which lives as long as
// both ends keep it.
func TestUpstreamDeadlineEndsAtAProtocolSwitch(t *testing.T) {
	up := newScriptedUpstream(t, func(_ int64, c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		if req.URL.Path == "/hang" {
			_, _ = br.ReadByte()
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		_, _ = io.Copy(c, br) // echo
	})
	u := config.UpstreamConfig{URL: mustParseURL(t, "http://"+up.addr+"/"), Timeout: 200 * time.Millisecond}
	transport, err := newUpstreamTransport(u, &reloader{})
	if err != nil {
		t.Fatal(err)
	}
	m := newMetrics()
	front := httptest.NewServer(newUpstreamHandler(u, transport, m, logr.Discard()))
	t.Cleanup(front.Close)

	dial := func(path string) (net.Conn, *http.Response) {
		t.Helper()
		c, err := net.Dial("tcp", front.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		_, _ = io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		return c, resp
	}
	if _, resp := dial("/hang"); resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("an upgrade the upstream never answered got %d, want 504", resp.StatusCode)
	}
	c, resp := dial("/tunnel")
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("got %d, want 101", resp.StatusCode)
	}
	time.Sleep(500 * time.Millisecond) // past the deadline
	if _, err := io.WriteString(c, "ping"); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "ping" {
		t.Fatalf("the tunnel past the deadline: %q, %v; want the echo", got, err)
	}
	if n := counterValue(t, m.upstreamTimeouts); n != 1 {
		t.Errorf("rbac_proxy_upstream_timeouts_total = %v, want 1 (the unanswered upgrade)", n)
	}
}

func mustParseURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestUpstreamTimeoutFlag(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		want    time.Duration
		wantErr string
	}{
		{nil, config.DefaultUpstreamTimeout, ""},
		{[]string{"--upstream-timeout=30s"}, 30 * time.Second, ""},
		{[]string{"--upstream-timeout=0"}, 0, ""},
		{[]string{"--upstream-timeout=-1s"}, 0, `--upstream-timeout: Invalid value: "-1s": must not be negative (0 means no bound)`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			f := config.NewFlags("rbac-proxy")
			if err := f.Parse(append([]string{"--secure-listen-address=127.0.0.1:0", "--upstream=http://127.0.0.1:9400/"}, tc.args...)); err != nil {
				t.Fatal(err)
			}
			cfg, err := f.Config()
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("got %v, want %s", err, tc.wantErr)
				}
				return
			}
			if err != nil || cfg.Upstream.Timeout != tc.want {
				t.Fatalf("got %v, %v; want %v", cfg, err, tc.want)
			}
		})
	}
}
