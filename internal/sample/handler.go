package sample

import (
	"net/http"

	"github.com/prometheus/common/expfmt"
)

// Handler serves what dcgm-exporter serves: the sample on /metrics and 200
// on /health (its liveness and readiness probes' path); 404 elsewhere.
func Handler(hostname string) http.Handler {
	return HandlerWith(hostname, Options{})
}

// Options change what HandlerWith serves.
type Options struct {
	// GPUs are the devices served; nil is GPUs.
	GPUs []GPU
	// OpenMetrics serves OpenMetrics 1.0.0 to a caller whose Accept prefers it
	// (Prometheus asks for it first), as an exporter built on client_golang's
	// promhttp with EnableOpenMetrics does; else the text format only, as
	// dcgm-exporter.
	OpenMetrics bool
}

// HandlerWith is Handler serving o's GPUs, in the format o allows.
func HandlerWith(hostname string, o Options) http.Handler {
	gpus := o.GPUs
	if gpus == nil {
		gpus = GPUs
	}
	text := []byte(Exposition(hostname, gpus, Text))
	openMetrics := []byte(Exposition(hostname, gpus, OpenMetrics))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		body, contentType := text, ContentType
		if o.OpenMetrics && expfmt.NegotiateAccept(r.Header, expfmt.FmtOpenMetrics_1_0_0, expfmt.FmtText).FormatType() == expfmt.TypeOpenMetrics {
			body, contentType = openMetrics, OpenMetricsContentType
		}
		w.Header().Set("Content-Type", contentType)
		_, _ = w.Write(body)
	})
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("OK\n"))
	})
	return mux
}
