package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/rbac-proxy/rbac-proxy/internal/sample"
)

func TestParseConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		env     map[string]string
		want    config
		wantErr bool
	}{
		{name: "default", want: config{":9400", "node-a"}},
		{name: "env", env: map[string]string{listenEnv: "127.0.0.1:19400"}, want: config{"127.0.0.1:19400", "node-a"}},
		{name: "short flag", args: []string{"-a", ":9500"}, want: config{":9500", "node-a"}},
		{name: "long flag", args: []string{"--address=:9501"}, want: config{":9501", "node-a"}},
		{name: "flag over env", args: []string{"-a", ":9502"}, env: map[string]string{listenEnv: ":9503"}, want: config{":9502", "node-a"}},
		{name: "empty env is unset", env: map[string]string{listenEnv: ""}, want: config{":9400", "node-a"}},
		{name: "unknown flag", args: []string{"--collectors=/etc/dcgm.csv"}, wantErr: true},
		{name: "stray argument", args: []string{"serve"}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"NODE_NAME": "node-a"}
			for k, v := range tc.env {
				env[k] = v
			}
			got, err := parseConfig(tc.args, func(k string) string { return env[k] }, io.Discard)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if !tc.wantErr && got != tc.want {
				t.Errorf("config = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// Without NODE_NAME the Hostname label is the host's name, as in a Pod
// where dcgm-exporter is not given its node's.
func TestParseConfigHostname(t *testing.T) {
	got, err := parseConfig(nil, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got.hostname == "" {
		t.Error("empty hostname")
	}
}

// serve answers on the configured address with the sample in the text
// format, and returns nil once its context ends.
func TestServe(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, config{address: addr, hostname: "node-a"}) }()

	var resp *http.Response
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err = http.Get("http://" + addr + "/metrics"); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	util := families["DCGM_FI_DEV_GPU_UTIL"]
	if util == nil || len(util.Metric) != len(sample.GPUs) {
		t.Fatalf("DCGM_FI_DEV_GPU_UTIL = %v, want %d series", util, len(sample.GPUs))
	}
	if !strings.Contains(util.Metric[0].String(), `value:"node-a"`) {
		t.Errorf("series without the Hostname label: %v", util.Metric[0])
	}
	health, err := http.Get("http://" + addr + "/health")
	if err != nil {
		t.Fatal(err)
	}
	health.Body.Close()
	if health.StatusCode != http.StatusOK {
		t.Errorf("/health = %d", health.StatusCode)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve after its context ended: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not return after its context ended")
	}
}
