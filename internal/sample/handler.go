package sample

import "net/http"

// Handler serves what dcgm-exporter serves: the sample on /metrics and 200
// on /health (its liveness and readiness probes' path); 404 elsewhere.
func Handler(hostname string) http.Handler {
	body := []byte(Metrics(hostname))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", ContentType)
		_, _ = w.Write(body)
	})
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("OK\n"))
	})
	return mux
}
