package story

import (
	"fmt"
	"net"
	"net/http"
	"strings"
)

// A sample of what dcgm-exporter serves on :9400/metrics, for four GPUs.
var sampleGPUs = []struct {
	uuid, bus            string
	util, memUsed, power float64
	temp                 int
}{
	{"GPU-5fd4b3a2-0c1e-4d7b-9a3f-1b2c3d4e5f60", "00000000:18:00.0", 87, 61234, 512.3, 64},
	{"GPU-6ae5c4b3-1d2f-4e8c-8b40-2c3d4e5f6071", "00000000:2A:00.0", 92, 70112, 598.7, 67},
	{"GPU-7bf6d5c4-2e30-4f9d-9c51-3d4e5f607182", "00000000:3A:00.0", 12, 1024, 118.9, 41},
	{"GPU-8c07e6d5-3f41-40ae-8d62-4e5f60718293", "00000000:5D:00.0", 0, 0, 71.2, 36},
}

// sampleMetrics renders the sample in the Prometheus text format.
func sampleMetrics() string {
	var b strings.Builder
	family := func(name, typ, help string, value func(i int) string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
		for i, g := range sampleGPUs {
			fmt.Fprintf(&b, "%s{gpu=\"%d\",UUID=\"%s\",pci_bus_id=\"%s\",device=\"nvidia%d\",modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"gpu-node-1\"} %s\n",
				name, i, g.uuid, g.bus, i, value(i))
		}
	}
	family("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %).", func(i int) string { return fmt.Sprint(sampleGPUs[i].util) })
	family("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB).", func(i int) string { return fmt.Sprint(sampleGPUs[i].memUsed) })
	family("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W).", func(i int) string { return fmt.Sprint(sampleGPUs[i].power) })
	family("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C).", func(i int) string { return fmt.Sprint(sampleGPUs[i].temp) })
	return b.String()
}

// startSampleExporter serves the sample on 127.0.0.1 (the exporter's place in
// the Pod) and returns its base URL.
func startSampleExporter(env *Env) (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	body := sampleMetrics()
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = w.Write([]byte(body))
	})
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(l) }()
	env.onStop(srv.Close)
	return "http://" + l.Addr().String() + "/", nil
}
