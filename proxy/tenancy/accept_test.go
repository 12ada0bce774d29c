package tenancy

import "testing"

func TestUpstreamAccept(t *testing.T) {
	const om = acceptOpenMetrics + "," + acceptText + ";q=0.5"
	for _, tc := range []struct{ accept, want string }{
		{"", acceptText},
		{"*/*", acceptText},
		// Prometheus 2.42.
		{"application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1", om},
		// Prometheus 3 with native histograms: protobuf first, then OpenMetrics.
		{"application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1", om},
		{"application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited", acceptText},
		{"text/plain;version=0.0.4", acceptText},
		{"application/openmetrics-text", om},
		{"application/openmetrics-text; version=0.0.1", om},
		{"Application/OpenMetrics-Text; Version=1.0.0", om},
		{"application/openmetrics-text;version=2.0.0", acceptText},
		{"application/openmetrics-text;version=1.0.0;q=0.3,text/plain;q=0.5", acceptText},
		{"application/openmetrics-text;version=1.0.0;q=0.5,text/plain;q=0.5", acceptText},
		{"application/openmetrics-text;q=0", acceptText},
		{"text/plain;q=0,application/openmetrics-text;q=0.1", om},
		{"garbage,,;;==", acceptText},
	} {
		if got := UpstreamAccept(tc.accept); got != tc.want {
			t.Errorf("UpstreamAccept(%q) = %q, want %q", tc.accept, got, tc.want)
		}
	}
}
