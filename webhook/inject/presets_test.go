package inject

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestPresetDetection(t *testing.T) {
	for _, tc := range []struct {
		c    corev1.Container
		want string
	}{
		{corev1.Container{Image: "nvcr.io/nvidia/k8s/dcgm-exporter:3.3.8-3.6.0-ubuntu22.04"}, "dcgm-exporter"},
		{corev1.Container{Image: "docker.io/rocm/device-metrics-exporter@sha256:abc"}, "amd-device-metrics-exporter"},
		{corev1.Container{Image: "localhost:5000/prom/node-exporter:v1"}, "node-exporter"},
		{corev1.Container{Image: "example/custom:1", Env: []corev1.EnvVar{{Name: "DCGM_EXPORTER_LISTEN"}}}, "dcgm-exporter"},
		{corev1.Container{Image: "example/custom:1", Args: []string{"--web.listen-address=:9100"}}, "node-exporter"},
		{corev1.Container{Image: "example/custom:1", Args: []string{"--listen=:9100"}}, ""},
		{corev1.Container{Image: "registry.example:5000/node-exporter-tools/other:1"}, "node-exporter"},
	} {
		got := ""
		if p := DetectPreset(&tc.c); p != nil {
			got = p.Name
		}
		if got != tc.want {
			t.Errorf("%s %v %v: preset %q, want %q", tc.c.Image, tc.c.Env, tc.c.Args, got, tc.want)
		}
	}
}

func TestApplyListen(t *testing.T) {
	dcgm := findPreset("dcgm-exporter").Listen
	c := corev1.Container{Args: []string{"-f", "/etc/x.csv", "-a", ":9400"}, Env: []corev1.EnvVar{{Name: "DCGM_EXPORTER_LISTEN", ValueFrom: &corev1.EnvVarSource{}}}}
	applyListen(&c, dcgm, 19400)
	if want := []string{"-f", "/etc/x.csv", "-a", "127.0.0.1:19400"}; !reflect.DeepEqual(c.Args, want) {
		t.Errorf("dcgm args %v, want %v", c.Args, want)
	}
	if want := []corev1.EnvVar{{Name: "DCGM_EXPORTER_LISTEN", Value: "127.0.0.1:19400"}}; !reflect.DeepEqual(c.Env, want) {
		t.Errorf("dcgm env %v, want %v", c.Env, want)
	}

	amd := findPreset("amd-device-metrics-exporter").Listen
	c = corev1.Container{}
	applyListen(&c, amd, 15000)
	if want := []string{"--bind=127.0.0.1"}; !reflect.DeepEqual(c.Args, want) {
		t.Errorf("amd args %v", c.Args)
	}
	if want := []corev1.EnvVar{{Name: "METRICS_EXPORTER_PORT", Value: "15000"}}; !reflect.DeepEqual(c.Env, want) {
		t.Errorf("amd env %v", c.Env)
	}

	node := findPreset("node-exporter").Listen
	c = corev1.Container{Command: []string{"/bin/node_exporter", "--web.listen-address", "0.0.0.0:9100"}}
	applyListen(&c, node, 19100)
	if want := []string{"/bin/node_exporter", "--web.listen-address", "127.0.0.1:19100"}; !reflect.DeepEqual(c.Command, want) || c.Args != nil {
		t.Errorf("node command %v args %v", c.Command, c.Args)
	}
}

func TestParseUpstreamListen(t *testing.T) {
	errs := &problems{}
	got := parseUpstreamListen("env:ADDR={host}:{port}, arg:--bind={host}", errs)
	want := []ListenSetting{{Env: "ADDR", Value: "{host}:{port}"}, {Arg: "--bind", Value: "{host}"}}
	if errs.err() != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("%v %v", got, errs.err())
	}
	for _, bad := range []string{"", "env:A", "env:=1{port}", "env:1A={port}", "arg:bind={port}", "arg:-={port}", "file:x={port}", "env:A=1", "env:A={port},", "env:A=a b{port}"} {
		errs := &problems{}
		if got := parseUpstreamListen(bad, errs); errs.err() == nil {
			t.Errorf("%q accepted: %v", bad, got)
		}
	}
}
