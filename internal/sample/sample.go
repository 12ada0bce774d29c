// Package sample is the one dcgm-exporter-shaped sample of GPU metrics that the sample exporter and the tests serve.
package sample

import (
	"fmt"
	"strings"
)

// GPU is one device in the sample, with the Pod dcgm-exporter's Kubernetes
// mapping attributes it to (empty for an idle GPU: dcgm-exporter then omits
// the namespace, pod and container labels).
type GPU struct {
	UUID, PCIBusID            string
	Util, FBUsed, Power       float64
	Temp                      int
	Namespace, Pod, Container string
}

// GPUs are four H100s: two busy with one training Pod, one lightly used by
// another, one idle.
var GPUs = []GPU{
	{"GPU-5fd4b3a2-0c1e-4d7b-9a3f-1b2c3d4e5f60", "00000000:18:00.0", 87, 61234, 512.3, 64, "ml-training", "trainer-0", "pytorch"},
	{"GPU-6ae5c4b3-1d2f-4e8c-8b40-2c3d4e5f6071", "00000000:2A:00.0", 92, 70112, 598.7, 67, "ml-training", "trainer-0", "pytorch"},
	{"GPU-7bf6d5c4-2e30-4f9d-9c51-3d4e5f607182", "00000000:3A:00.0", 12, 1024, 118.9, 41, "ml-serving", "inference-7c9f", "triton"},
	{"GPU-8c07e6d5-3f41-40ae-8d62-4e5f60718293", "00000000:5D:00.0", 0, 0, 71.2, 36, "", "", ""},
}

// ModelName is the modelName label of every sample GPU.
const ModelName = "NVIDIA H100 80GB HBM3"

// ContentType is the Prometheus text format's media type, as dcgm-exporter sends it.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// OpenMetricsContentType is OpenMetrics 1.0.0's media type, as client_golang's promhttp sends it.
const OpenMetricsContentType = "application/openmetrics-text; version=1.0.0; charset=utf-8"

// Format is an exposition format the sample renders in.
type Format int

const (
	// Text is the Prometheus text format 0.0.4.
	Text Format = iota
	// OpenMetrics is OpenMetrics 1.0.0: the same lines for gauges, and "# EOF" last.
	OpenMetrics
)

// A family is one DCGM field dcgm-exporter exports as a gauge.
type family struct {
	name, help string
	value      func(GPU) string
}

var families = []family{
	{"DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).", func(g GPU) string { return fmt.Sprint(g.Util) }},
	{"DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB).", func(g GPU) string { return fmt.Sprint(g.FBUsed) }},
	{"DCGM_FI_DEV_POWER_USAGE", "Power draw (in W).", func(g GPU) string { return fmt.Sprint(g.Power) }},
	{"DCGM_FI_DEV_GPU_TEMP", "GPU temperature (in C).", func(g GPU) string { return fmt.Sprint(g.Temp) }},
}

// Families are the names of the sample's metric families, in the order served.
func Families() []string {
	names := make([]string, len(families))
	for i, f := range families {
		names[i] = f.name
	}
	return names
}

// Metrics renders the sample in the Prometheus text format, each series
// labelled with hostname as dcgm-exporter labels them with its node's name.
func Metrics(hostname string) string { return Exposition(hostname, GPUs, Text) }

// Exposition renders gpus as Metrics does, in format f.
func Exposition(hostname string, gpus []GPU, f Format) string {
	var b strings.Builder
	for _, fam := range families {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n", fam.name, fam.help, fam.name)
		for i, g := range gpus {
			fmt.Fprintf(&b, "%s{gpu=\"%d\",UUID=\"%s\",pci_bus_id=\"%s\",device=\"nvidia%d\",modelName=\"%s\",Hostname=\"%s\"",
				fam.name, i, g.UUID, g.PCIBusID, i, ModelName, hostname)
			if g.Pod != "" {
				fmt.Fprintf(&b, ",container=\"%s\",namespace=\"%s\",pod=\"%s\"", g.Container, g.Namespace, g.Pod)
			}
			fmt.Fprintf(&b, "} %s\n", fam.value(g))
		}
	}
	if f == OpenMetrics {
		b.WriteString("# EOF\n")
	}
	return b.String()
}
