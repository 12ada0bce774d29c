package webhook

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcome is how one admission request ended, the label of the webhook's metrics.
type Outcome string

const (
	OutcomeInjected        Outcome = "injected"
	OutcomeSkipped         Outcome = "skipped"
	OutcomeAlreadyInjected Outcome = "already_injected"
	OutcomeDenied          Outcome = "denied"
	OutcomeError           Outcome = "error"
)

// Metrics are the webhook's Prometheus metrics.
type Metrics struct {
	injections   *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	certificates *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them with reg (controller-runtime's
// metrics.Registry in the server).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		injections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rbac_proxy_injector_injections_total",
			Help: "Pod admission requests handled by the rbac-proxy injector, by outcome.",
		}, []string{"outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rbac_proxy_injector_admission_duration_seconds",
			Help:    "Time the rbac-proxy injector took to answer a Pod admission request, by outcome.",
			Buckets: []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}, []string{"outcome"}),
		certificates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rbac_proxy_injector_certificate_reconciles_total",
			Help: "Injected Pods handled by the certificate controller, by result: exists, created, updated, refused (the Pod's claims do not match what the API server stored), error (retried).",
		}, []string{"result"}),
	}
	for _, c := range []prometheus.Collector{m.injections, m.latency, m.certificates} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, o := range []Outcome{OutcomeInjected, OutcomeSkipped, OutcomeAlreadyInjected, OutcomeDenied, OutcomeError} {
		m.injections.WithLabelValues(string(o))
	}
	for _, r := range []string{string(CertificateExists), string(CertificateCreated), string(CertificateUpdated), "refused", "error"} {
		m.certificates.WithLabelValues(r)
	}
	return m, nil
}

func (m *Metrics) observe(o Outcome, d time.Duration) {
	if m == nil {
		return
	}
	m.injections.WithLabelValues(string(o)).Inc()
	m.latency.WithLabelValues(string(o)).Observe(d.Seconds())
}

func (m *Metrics) certificate(result string) {
	if m == nil {
		return
	}
	m.certificates.WithLabelValues(result).Inc()
}
