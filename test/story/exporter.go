package story

import (
	"net"
	"net/http"

	"github.com/rbac-proxy/rbac-proxy/internal/sample"
)

// startSampleExporter serves the sample on 127.0.0.1 (the exporter's place in
// the Pod) and returns its base URL.
func startSampleExporter(env *Env) (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: sample.Handler("gpu-node-1")}
	go func() { _ = srv.Serve(l) }()
	env.onStop(srv.Close)
	return "http://" + l.Addr().String() + "/", nil
}
