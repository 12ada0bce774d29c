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

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(Handler("node-a"))
	defer srv.Close()
	for _, tc := range []struct {
		path        string
		status      int
		contentType string
	}{
		{"/metrics", 200, ContentType},
		{"/health", 200, ""},
		{"/other", 404, ""},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, err := http.Get(srv.URL + tc.path)
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
			if tc.path == "/metrics" && string(body) != Metrics("node-a") {
				t.Errorf("body is not the sample")
			}
		})
	}
}
