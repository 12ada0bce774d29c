package sample

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The sample parses as the text format: every family a gauge with one series
// per GPU, the Pod labels on the GPUs a Pod holds and on no others.
func TestMetricsParse(t *testing.T) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(Metrics("node-a")))
	if err != nil {
		t.Fatal(err)
	}
	if len(families) != len(Families()) {
		t.Errorf("%d families, want %d", len(families), len(Families()))
	}
	for _, name := range Families() {
		f := families[name]
		if f == nil {
			t.Errorf("no family %s", name)
			continue
		}
		if got := f.GetType().String(); got != "GAUGE" {
			t.Errorf("%s is a %s, want a gauge", name, got)
		}
		if len(f.Metric) != len(GPUs) {
			t.Errorf("%s has %d series, want %d", name, len(f.Metric), len(GPUs))
			continue
		}
		for i, m := range f.Metric {
			labels := map[string]string{}
			for _, l := range m.Label {
				labels[l.GetName()] = l.GetValue()
			}
			g := GPUs[i]
			if labels["UUID"] != g.UUID || labels["Hostname"] != "node-a" || labels["modelName"] != ModelName {
				t.Errorf("%s series %d labels %v", name, i, labels)
			}
			if labels["pod"] != g.Pod || labels["namespace"] != g.Namespace || labels["container"] != g.Container {
				t.Errorf("%s series %d Pod labels %v, want %s/%s %s", name, i, labels, g.Namespace, g.Pod, g.Container)
			}
			if _, ok := labels["pod"]; ok != (g.Pod != "") {
				t.Errorf("%s series %d: pod label present = %v, want %v", name, i, ok, g.Pod != "")
			}
		}
	}
}

// prometheusAccept is the Accept header Prometheus 2.42 scrapes with.
const prometheusAccept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"

// The OpenMetrics rendering is the text rendering's lines (a gauge's series and
// metadata read the same in both) and then "# EOF".
func TestExpositionOpenMetrics(t *testing.T) {
	om := Exposition("node-a", GPUs, OpenMetrics)
	text, ok := strings.CutSuffix(om, "# EOF\n")
	if !ok {
		t.Fatalf("the OpenMetrics rendering does not end with # EOF:\n%s", om)
	}
	if text != Metrics("node-a") {
		t.Errorf("the OpenMetrics rendering's series differ from the text format's:\n%s", om)
	}
	if strings.Contains(Metrics("node-a"), "# EOF") {
		t.Error("the text rendering holds # EOF")
	}
}

func TestHandler(t *testing.T) {
	tenants := []GPU{GPUs[0], {UUID: "GPU-x", PCIBusID: "00000000:9A:00.0", Namespace: "team-b", Pod: "p", Container: "c"}}
	for _, tc := range []struct {
		name        string
		opts        *Options // nil: Handler
		path        string
		accept      string
		status      int
		contentType string
		body        string
	}{
		{name: "metrics", path: "/metrics", status: 200, contentType: ContentType, body: Metrics("node-a")},
		{name: "metrics, Prometheus' Accept, text only", path: "/metrics", accept: prometheusAccept, status: 200, contentType: ContentType, body: Metrics("node-a")},
		{name: "health", path: "/health", status: 200},
		{name: "other", path: "/other", status: 404},
		{name: "OpenMetrics to Prometheus", opts: &Options{OpenMetrics: true}, path: "/metrics", accept: prometheusAccept,
			status: 200, contentType: OpenMetricsContentType, body: Exposition("node-a", GPUs, OpenMetrics)},
		{name: "OpenMetrics, no Accept", opts: &Options{OpenMetrics: true}, path: "/metrics",
			status: 200, contentType: ContentType, body: Metrics("node-a")},
		{name: "OpenMetrics, text preferred", opts: &Options{OpenMetrics: true}, path: "/metrics",
			accept: "text/plain;version=0.0.4,application/openmetrics-text;version=1.0.0;q=0.5", status: 200, contentType: ContentType, body: Metrics("node-a")},
		{name: "OpenMetrics, protobuf asked", opts: &Options{OpenMetrics: true}, path: "/metrics",
			accept: "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited", status: 200, contentType: ContentType, body: Metrics("node-a")},
		{name: "other GPUs", opts: &Options{GPUs: tenants}, path: "/metrics", status: 200, contentType: ContentType, body: Exposition("node-a", tenants, Text)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := Handler("node-a")
			if tc.opts != nil {
				h = HandlerWith("node-a", *tc.opts)
			}
			srv := httptest.NewServer(h)
			defer srv.Close()
			req, err := http.NewRequest(http.MethodGet, srv.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.accept != "" {
				req.Header.Set("Accept", tc.accept)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.contentType != "" && resp.Header.Get("Content-Type") != tc.contentType {
				t.Errorf("Content-Type %q, want %q", resp.Header.Get("Content-Type"), tc.contentType)
			}
			if tc.body != "" && string(body) != tc.body {
				t.Errorf("body:\n%s\nwant:\n%s", body, tc.body)
			}
		})
	}
}
