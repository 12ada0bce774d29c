package review

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the reviews' Prometheus metrics, registered with the proxy's
// own.
type metrics struct {
	reg           prometheus.Registerer
	authn         *prometheus.CounterVec   // method, result
	cache         *prometheus.CounterVec   // cache, result
	reviewLatency *prometheus.HistogramVec // review, result
	tokenRefused  *prometheus.CounterVec   // reason
	saTokens      *prometheus.CounterVec   // result
}

// newMetrics registers the metrics with reg; nil registers them nowhere.
func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &metrics{
		reg: reg,
		authn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rbac_proxy_authentication_total",
			Help: "Authentication decisions by method (x509, jwt, token, none) and result (success, failure, error).",
		}, []string{"method", "result"}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rbac_proxy_review_cache_total",
			Help: "Review cache lookups by cache (tokenreview, subjectaccessreview) and result (hit, miss, coalesced, stale).",
		}, []string{"cache", "result"}),
		reviewLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rbac_proxy_review_duration_seconds",
			Help:    "Latency of TokenReview and SubjectAccessReview calls to the API server, by review and result (ok, error).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"review", "result"}),
		tokenRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rbac_proxy_token_refused_total",
			Help: "Bearer tokens refused without a TokenReview, by reason: malformed (cannot be a token), throttled (the review budget for unknown tokens had no turn for it).",
		}, []string{"reason"}),
		saTokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rbac_proxy_serviceaccount_tokens_total",
			Help: "Bearer tokens seen by local ServiceAccount verification, by result: verified, cached (verified before, with the same key set), refused, reviewed (sent to a TokenReview by --service-account-legacy-tokens or --service-account-long-lived-tokens), other (not a ServiceAccount token of the cluster's issuer: reviewed).",
		}, []string{"result"}),
	}
	reg.MustRegister(m.authn, m.cache, m.reviewLatency, m.tokenRefused, m.saTokens)
	return m
}

func (m *metrics) review(review string, start time.Time, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.reviewLatency.WithLabelValues(review, result).Observe(time.Since(start).Seconds())
}

// tokenReviewQueue exports how many TokenReviews of unknown tokens wait for
// their turn.
func (m *metrics) tokenReviewQueue(queued func() int) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "rbac_proxy_tokenreview_queue",
		Help: "TokenReviews of tokens not in the cache waiting for their turn in the review budget.",
	}, func() float64 { return float64(queued()) }))
}
