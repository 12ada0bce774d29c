package proxy

import (
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the proxy's own Prometheus metrics, on a registry of its own.
type metrics struct {
	registry *prometheus.Registry

	requests         *prometheus.CounterVec   // code
	authz            *prometheus.CounterVec   // result
	upstreamLatency  *prometheus.HistogramVec // code
	upstreamTimeouts prometheus.Counter
	certReloads      *prometheus.CounterVec // file, result
	openConns        *prometheus.GaugeVec   // listener
	tenants          *prometheus.CounterVec // result

	// Pre-resolved children for the hot path.
	codes map[int]prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rbac_proxy_requests_total",
			Help: "Requests answered by the proxy, by HTTP status code.",
		}, []string{"code"}),
		authz: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rbac_proxy_authorization_total",
			Help: "Authorization decisions by result (allowed, denied, error).",
		}, []string{"result"}),
		upstreamLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rbac_proxy_upstream_duration_seconds",
			Help:    "Time from sending a request to the upstream to receiving its response headers, by status code (0 when no response).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"code"}),
		upstreamTimeouts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rbac_proxy_upstream_timeouts_total",
			Help: "Upstream exchanges cut by their deadline (X-Prometheus-Scrape-Timeout-Seconds, else --upstream-timeout): answered 504 when no response had started, aborted otherwise.",
		}),
		certReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rbac_proxy_certificate_reloads_total",
			Help: "Reloads of the serving certificate and client CA from disk, by file (serving, client-ca, upstream-client) and result (success, error).",
		}, []string{"file", "result"}),
		openConns: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rbac_proxy_open_connections",
			Help: "Client connections open now, by listener (proxy, endpoints, insecure); see --max-connections.",
		}, []string{"listener"}),
		tenants: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rbac_proxy_tenant_scrapes_total",
			Help: "Requests denied the whole endpoint and served as a tenant (--tenancy), by result: served (filtered), nothing_visible (403), error (a namespace's review could not be made: 403), unfiltered (the upstream's answer cannot be filtered: 502), aborted (an error once the response had begun).",
		}, []string{"result"}),
		codes: map[int]prometheus.Counter{},
	}
	m.registry.MustRegister(m.requests, m.authz, m.upstreamLatency, m.upstreamTimeouts, m.certReloads, m.openConns, m.tenants,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, code := range []int{200, 400, 401, 403, 404, 500, 502, 504} {
		m.codes[code] = m.requests.WithLabelValues(strconv.Itoa(code))
	}
	return m
}

func (m *metrics) request(code int) {
	if c, ok := m.codes[code]; ok {
		c.Inc()
		return
	}
	m.requests.WithLabelValues(strconv.Itoa(code)).Inc()
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// timedTransport records upstream latency.
type timedTransport struct {
	next http.RoundTripper
	m    *metrics
}

func (t timedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(r)
	code := "0"
	if err == nil {
		code = strconv.Itoa(resp.StatusCode)
	}
	t.m.upstreamLatency.WithLabelValues(code).Observe(time.Since(start).Seconds())
	return resp, err
}

// connState is an http.Server's ConnState hook counting its open connections.
func (m *metrics) connState(listener string) func(net.Conn, http.ConnState) {
	g := m.openConns.WithLabelValues(listener)
	return func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			g.Inc()
		case http.StateClosed, http.StateHijacked:
			g.Dec()
		}
	}
}
