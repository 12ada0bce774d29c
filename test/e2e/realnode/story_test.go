package realnode

import (
	"testing"
	"time"
)

// TestRealNode tells the story on the node. The subtests share the running Pods and run in
// order: the rotation is measured before any proxy is killed.
func TestRealNode(t *testing.T) {
	start := time.Now()
	e := setUp(t)
	figure(t, "set-up: chart, cert-manager, 2 exporters and 2 Prometheus Ready", "%s", time.Since(start).Round(100*time.Millisecond))
	steps := []struct {
		name string
		run  func(*testing.T, *env)
	}{
		{"the proxy runs as a native sidecar of the real image", testSidecar},
		{"the kubelet probes the app through the proxy's pass-through", testProbes},
		{"Prometheus scrapes every Pod IP through the proxy, by token and by certificate", testScrapes},
		{"a Prometheus without rights gets 403, without credentials 401", testRefusals},
		{"the app's original port from the host is the proxy or refused", testDirect},
		{"scrape-config's monitors are valid CRD objects, its scrape_configs scrape every Pod by token and by certificate", testScrapeConfig},
		{"cert-manager's renewal reaches the proxy through the kubelet's Secret volume, no scrape fails", testRotation},
		{"the sidecar killed is restarted, the app untouched", testRestart},
	}
	for _, s := range steps {
		if !t.Run(s.name, func(t *testing.T) { s.run(t, e) }) && t.Context().Err() != nil {
			return
		}
	}
}
