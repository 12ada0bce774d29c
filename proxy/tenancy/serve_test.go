package tenancy

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rbac-proxy/rbac-proxy/proxy/tenancy/tenancytest"
)

// A small dcgm-exporter exposition: GPU 0 held by team-a, GPU 1 by team-b,
// GPU 2 idle (no pod labels), and a node-level family without any.
var dcgmSmall = lines(
	`# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).`,
	`# TYPE DCGM_FI_DEV_GPU_UTIL gauge`,
	`DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-a",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",Hostname="node-1",container="trainer",namespace="team-a",pod="trainer-0"} 87`,
	`DCGM_FI_DEV_GPU_UTIL{gpu="1",UUID="GPU-b",device="nvidia1",modelName="NVIDIA H100 80GB HBM3",Hostname="node-1",container="infer",namespace="team-b",pod="infer-0"} 12`,
	`DCGM_FI_DEV_GPU_UTIL{gpu="2",UUID="GPU-c",device="nvidia2",modelName="NVIDIA H100 80GB HBM3",Hostname="node-1"} 0`,
	`# HELP DCGM_FI_DEV_FB_USED Framebuffer memory used (in MiB).`,
	`# TYPE DCGM_FI_DEV_FB_USED gauge`,
	`DCGM_FI_DEV_FB_USED{gpu="1",UUID="GPU-b",device="nvidia1",modelName="NVIDIA H100 80GB HBM3",Hostname="node-1",container="infer",namespace="team-b",pod="infer-0"} 40211`,
	`DCGM_FI_DEV_FB_USED{gpu="2",UUID="GPU-c",device="nvidia2",modelName="NVIDIA H100 80GB HBM3",Hostname="node-1"} 0`,
	`# HELP DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION Total energy consumption since boot (in mJ).`,
	`# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter`,
	`DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{gpu="0",UUID="GPU-a",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",Hostname="node-1",container="trainer",namespace="team-a",pod="trainer-0"} 1.3e+09 1712000000000`,
	`# HELP dcgm_exporter_last_update node-level`,
	`# TYPE dcgm_exporter_last_update gauge`,
	`dcgm_exporter_last_update 1.712e+09`,
)

// An OpenMetrics exposition with # UNIT, a counter with _created and an
// exemplar, a histogram with exemplars, and # EOF.
var omSmall = lines(
	`# TYPE gpu_energy_joules counter`,
	`# UNIT gpu_energy_joules joules`,
	`# HELP gpu_energy_joules Energy used.`,
	`gpu_energy_joules_total{gpu="0",namespace="team-a",pod="p"} 123.5 # {trace_id="abc"} 1.0 1712000000.001`,
	`gpu_energy_joules_created{gpu="0",namespace="team-a",pod="p"} 1711000000.0`,
	`gpu_energy_joules_total{gpu="1",namespace="team-b",pod="q"} 7.0`,
	`gpu_energy_joules_created{gpu="1",namespace="team-b",pod="q"} 1711000000.0`,
	`# TYPE kernel_seconds histogram`,
	`# UNIT kernel_seconds seconds`,
	`kernel_seconds_bucket{le="0.1",namespace="team-b"} 3 # {trace_id="k1"} 0.05`,
	`kernel_seconds_bucket{le="+Inf",namespace="team-b"} 4`,
	`kernel_seconds_count{namespace="team-b"} 4`,
	`kernel_seconds_sum{namespace="team-b"} 0.9`,
	`# TYPE gpu_up gauge`,
	`gpu_up{gpu="2"} 1`,
	`# EOF`,
)

func TestServe(t *testing.T) {
	for _, tc := range []struct {
		name        string
		contentType string
		in          string
		labels      []string // DefaultNamespaceLabels when nil
		allow       []string
		want        string
		wantErr     string // a substring; ErrNothingVisible's text for it
	}{{
		name:        "dcgm: team-a sees its GPU's series and their families",
		contentType: textType, in: dcgmSmall, allow: []string{"team-a"},
		want: lines(
			`# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).`,
			`# TYPE DCGM_FI_DEV_GPU_UTIL gauge`,
			`DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-a",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",Hostname="node-1",container="trainer",namespace="team-a",pod="trainer-0"} 87`,
			`# HELP DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION Total energy consumption since boot (in mJ).`,
			`# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter`,
			`DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{gpu="0",UUID="GPU-a",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",Hostname="node-1",container="trainer",namespace="team-a",pod="trainer-0"} 1.3e+09 1712000000000`,
		),
	}, {
		name:        "dcgm: team-b; idle GPUs and node-level series are nobody's",
		contentType: textType, in: dcgmSmall, allow: []string{"team-b"},
		want: lines(
			`# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).`,
			`# TYPE DCGM_FI_DEV_GPU_UTIL gauge`,
			`DCGM_FI_DEV_GPU_UTIL{gpu="1",UUID="GPU-b",device="nvidia1",modelName="NVIDIA H100 80GB HBM3",Hostname="node-1",container="infer",namespace="team-b",pod="infer-0"} 12`,
			`# HELP DCGM_FI_DEV_FB_USED Framebuffer memory used (in MiB).`,
			`# TYPE DCGM_FI_DEV_FB_USED gauge`,
			`DCGM_FI_DEV_FB_USED{gpu="1",UUID="GPU-b",device="nvidia1",modelName="NVIDIA H100 80GB HBM3",Hostname="node-1",container="infer",namespace="team-b",pod="infer-0"} 40211`,
		),
	}, {
		name:        "dcgm: a caller allowed no namespace of it gets nothing",
		contentType: textType, in: dcgmSmall, allow: []string{"team-c"},
		wantErr: ErrNothingVisible.Error(),
	}, {
		name:        "exported_namespace names the namespace too",
		contentType: textType,
		in: lines(`# TYPE DCGM_FI_DEV_GPU_TEMP gauge`,
			`DCGM_FI_DEV_GPU_TEMP{gpu="0",exported_namespace="team-a",exported_pod="trainer-0",namespace="gpu-operator"} 61`,
			`DCGM_FI_DEV_GPU_TEMP{gpu="1",exported_namespace="team-a",exported_pod="trainer-1"} 60`),
		labels: []string{"exported_namespace"}, allow: []string{"team-a"},
		want: lines(`# TYPE DCGM_FI_DEV_GPU_TEMP gauge`,
			`DCGM_FI_DEV_GPU_TEMP{gpu="0",exported_namespace="team-a",exported_pod="trainer-0",namespace="gpu-operator"} 61`,
			`DCGM_FI_DEV_GPU_TEMP{gpu="1",exported_namespace="team-a",exported_pod="trainer-1"} 60`),
	}, {
		name:        "namespace and exported_namespace that differ: both must be allowed",
		contentType: textType,
		in: lines(`# TYPE DCGM_FI_DEV_GPU_TEMP gauge`,
			`DCGM_FI_DEV_GPU_TEMP{gpu="0",exported_namespace="team-a",namespace="team-b"} 61`,
			`DCGM_FI_DEV_GPU_TEMP{gpu="1",exported_namespace="team-a"} 60`,
			`DCGM_FI_DEV_GPU_TEMP{gpu="2",exported_namespace="",namespace="team-a"} 59`),
		allow: []string{"team-a"},
		want: lines(`# TYPE DCGM_FI_DEV_GPU_TEMP gauge`,
			`DCGM_FI_DEV_GPU_TEMP{gpu="1",exported_namespace="team-a"} 60`,
			`DCGM_FI_DEV_GPU_TEMP{gpu="2",exported_namespace="",namespace="team-a"} 59`),
	}, {
		name:        "escaped label values pass through as sent; a namespace inside a value is a value",
		contentType: textType,
		in: lines(`# HELP job_info Escapes: \\ and \n.`,
			`# TYPE job_info gauge`,
			`job_info{namespace="team-a",pod="a\"b\\c\nd",cmd="python -c \"print(1)\""} 1`,
			`job_info{pod="x\",namespace=\"team-a",gpu="3"} 1`,
			`job_info{namespace="team-a\n"} 1`),
		allow: []string{"team-a"},
		want: lines(`# HELP job_info Escapes: \\ and \n.`,
			`# TYPE job_info gauge`,
			`job_info{namespace="team-a",pod="a\"b\\c\nd",cmd="python -c \"print(1)\""} 1`),
	}, {
		name:        "UTF-8 quoted label names are read as the parser reads them",
		contentType: textType,
		in: lines(`{"gpu.util",gpu="0","namespace"="team-a"} 1`,
			`{"gpu.util",gpu="1","namespace"="team-b"} 1`),
		allow: []string{"team-a"},
		want:  lines(`{"gpu.util",gpu="0","namespace"="team-a"} 1`),
	}, {
		name:        "comments are dropped, blank lines too",
		contentType: textType,
		in: lines(`# a comment naming namespace="team-b"`, ``,
			`# TYPE x gauge`, `x{namespace="team-a"} 1`, ``, `# another`),
		allow: []string{"team-a"},
		want:  lines(`# TYPE x gauge`, `x{namespace="team-a"} 1`),
	}, {
		name:        "a last line without a newline gets one",
		contentType: textType,
		in:          `x{namespace="team-a"} 1`,
		allow:       []string{"team-a"},
		want:        lines(`x{namespace="team-a"} 1`),
	}, {
		name:        "OpenMetrics: exemplars, # UNIT, _created and # EOF kept",
		contentType: omType, in: omSmall, allow: []string{"team-a"},
		want: lines(
			`# TYPE gpu_energy_joules counter`,
			`# UNIT gpu_energy_joules joules`,
			`# HELP gpu_energy_joules Energy used.`,
			`gpu_energy_joules_total{gpu="0",namespace="team-a",pod="p"} 123.5 # {trace_id="abc"} 1.0 1712000000.001`,
			`gpu_energy_joules_created{gpu="0",namespace="team-a",pod="p"} 1711000000.0`,
			`# EOF`),
	}, {
		name:        "OpenMetrics: a histogram's series with its family",
		contentType: omType, in: omSmall, allow: []string{"team-b"},
		want: lines(
			`# TYPE gpu_energy_joules counter`,
			`# UNIT gpu_energy_joules joules`,
			`# HELP gpu_energy_joules Energy used.`,
			`gpu_energy_joules_total{gpu="1",namespace="team-b",pod="q"} 7.0`,
			`gpu_energy_joules_created{gpu="1",namespace="team-b",pod="q"} 1711000000.0`,
			`# TYPE kernel_seconds histogram`,
			`# UNIT kernel_seconds seconds`,
			`kernel_seconds_bucket{le="0.1",namespace="team-b"} 3 # {trace_id="k1"} 0.05`,
			`kernel_seconds_bucket{le="+Inf",namespace="team-b"} 4`,
			`kernel_seconds_count{namespace="team-b"} 4`,
			`kernel_seconds_sum{namespace="team-b"} 0.9`,
			`# EOF`),
	}, {
		name:        "OpenMetrics without # EOF is refused",
		contentType: omType, in: strings.TrimSuffix(omSmall, "# EOF\n"), allow: []string{"team-a"},
		wantErr: "# EOF",
	}, {
		name:        "OpenMetrics with data after # EOF is refused",
		contentType: omType, in: omSmall + `x{namespace="team-a"} 1` + "\n", allow: []string{"team-a"},
		wantErr: "after # EOF",
	}, {
		name:        "an invalid line is refused, not skipped",
		contentType: textType, in: lines(`x{namespace="team-a"} 1`, `y{namespace="team-a" 1`), allow: []string{"team-a"},
		wantErr: "parsing",
	}, {
		name:        "a namespace label twice is refused",
		contentType: textType, in: lines(`x{namespace="team-b",namespace="team-a"} 1`), allow: []string{"team-a"},
		wantErr: `"namespace" twice`,
	}, {
		name:        "a namespace label twice, one empty, is refused",
		contentType: textType, in: lines(`x{namespace="",namespace="team-a"} 1`), allow: []string{"team-a"},
		wantErr: `"namespace" twice`,
	}, {
		name:        "another label twice is the exposition's business",
		contentType: textType, in: lines(`x{pod="a",pod="b",namespace="team-a"} 1`), allow: []string{"team-a"},
		want: lines(`x{pod="a",pod="b",namespace="team-a"} 1`),
	}, {
		name:        "configured labels replace the defaults",
		contentType: textType, in: lines(`x{namespace="team-b",k8s_namespace="team-a"} 1`, `x{namespace="team-a"} 1`),
		labels: []string{"k8s_namespace"}, allow: []string{"team-a"},
		want: lines(`x{namespace="team-b",k8s_namespace="team-a"} 1`),
	}, {
		name:        "protobuf is refused",
		contentType: "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited", in: "x", allow: []string{"team-a"},
		wantErr: "neither text",
	}, {
		name:        "an unknown text version is refused",
		contentType: "text/plain; version=2.0.0", in: dcgmSmall, allow: []string{"team-a"},
		wantErr: "neither text",
	}, {
		name:        "no Content-Type is refused",
		contentType: "", in: dcgmSmall, allow: []string{"team-a"},
		wantErr: "Content-Type",
	}, {
		name:        "HTML is refused",
		contentType: "text/html", in: "<html>", allow: []string{"team-a"},
		wantErr: "neither text",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			names := tc.labels
			if names == nil {
				names = DefaultNamespaceLabels
			}
			for _, gz := range []bool{false, true} {
				a := newAllow(tc.allow...)
				rec := newRecorder()
				err := Serve(context.Background(), rec, upstream(tc.contentType, tc.in, gz), "", names, a.allow)
				if tc.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
						t.Fatalf("gzip %v: error %v, want one with %q", gz, err, tc.wantErr)
					}
					if !strings.Contains(tc.name, "after # EOF") && !strings.Contains(tc.name, "without # EOF") && rec.wroteHeader {
						t.Errorf("gzip %v: wrote a response before failing", gz)
					}
					continue
				}
				if err != nil {
					t.Fatalf("gzip %v: %v", gz, err)
				}
				got := body(t, rec)
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("gzip %v: output (-want +got):\n%s", gz, diff)
				}
				if _, err := parse(tc.contentType, got); err != nil {
					t.Errorf("gzip %v: the output does not parse: %v", gz, err)
				}
				if ct := rec.Header().Get("Content-Type"); ct != tc.contentType {
					t.Errorf("gzip %v: Content-Type %q, want the upstream's %q", gz, ct, tc.contentType)
				}
			}
		})
	}
}

// Errors after the first visible series are returned with the response
// begun; before it, nothing is written.
func TestServeFailsClosed(t *testing.T) {
	t.Run("allow fails", func(t *testing.T) {
		a := newAllow("team-a")
		a.err = errors.New("SubjectAccessReview: connection refused")
		rec := newRecorder()
		err := Serve(context.Background(), rec, upstream(textType, dcgmSmall, false), "", DefaultNamespaceLabels, a.allow)
		if err == nil || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("error %v, want allow's", err)
		}
		if rec.wroteHeader {
			t.Error("wrote a response")
		}
	})
	t.Run("allow fails after a visible series", func(t *testing.T) {
		calls := 0
		allow := func(_ context.Context, ns string) (bool, error) {
			if calls++; calls > 1 {
				return false, errors.New("timeout")
			}
			return true, nil
		}
		err := Serve(context.Background(), newRecorder(), upstream(textType, dcgmSmall, false), "", DefaultNamespaceLabels, allow)
		if err == nil || !strings.Contains(err.Error(), "timeout") {
			t.Fatalf("error %v, want allow's", err)
		}
	})
	t.Run("a canceled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := Serve(ctx, newRecorder(), upstream(textType, dcgmSmall, false), "", DefaultNamespaceLabels, newAllow("team-a").allow)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
	})
	t.Run("the upstream's status is not 200", func(t *testing.T) {
		res := upstream(textType, dcgmSmall, false)
		res.StatusCode = http.StatusInternalServerError
		rec := newRecorder()
		if err := Serve(context.Background(), rec, res, "", DefaultNamespaceLabels, newAllow("team-a").allow); err == nil || rec.wroteHeader {
			t.Fatalf("error %v, wrote %v; want an error and nothing written", err, rec.wroteHeader)
		}
	})
	for _, enc := range []string{"br", "deflate", "gzip, gzip"} {
		t.Run("Content-Encoding "+enc, func(t *testing.T) {
			res := upstream(textType, dcgmSmall, false)
			res.Header.Set("Content-Encoding", enc)
			rec := newRecorder()
			if err := Serve(context.Background(), rec, res, "", DefaultNamespaceLabels, newAllow("team-a").allow); err == nil || rec.wroteHeader {
				t.Fatalf("error %v, wrote %v; want an error and nothing written", err, rec.wroteHeader)
			}
		})
	}
	t.Run("gzip that is not", func(t *testing.T) {
		res := upstream(textType, dcgmSmall, false)
		res.Header.Set("Content-Encoding", "gzip")
		if err := Serve(context.Background(), newRecorder(), res, "", DefaultNamespaceLabels, newAllow("team-a").allow); err == nil {
			t.Fatal("no error")
		}
	})
	t.Run("a line too long", func(t *testing.T) {
		in := `x{namespace="team-a",pod="` + strings.Repeat("p", maxLine) + `"} 1` + "\n"
		if err := Serve(context.Background(), newRecorder(), upstream(textType, in, false), "", DefaultNamespaceLabels, newAllow("team-a").allow); err == nil {
			t.Fatal("no error")
		}
	})
}

// allow is asked once per namespace per scrape, and never about a value
// that cannot name a namespace.
func TestServeAsksOncePerNamespace(t *testing.T) {
	in := tenancytest.DCGM(tenancytest.EightGPUs, 1) + lines(`x{namespace="Team_A"} 1`, `x{namespace="team-a.b"} 1`)
	a := newAllow("team-a")
	if err := Serve(context.Background(), newRecorder(), upstream(textType, in, false), "", DefaultNamespaceLabels, a.allow); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]int{"team-a": 1, "team-b": 1}, a.asked); diff != "" {
		t.Errorf("questions (-want +got):\n%s", diff)
	}
}

func TestServeGzipOut(t *testing.T) {
	for _, tc := range []struct {
		acceptEncoding string
		gzip           bool
	}{
		{"", false},
		{"gzip", true},
		{"gzip, deflate, br", true},
		{"br;q=1.0, gzip;q=0.8, *;q=0.1", true},
		{"gzip;q=0", false},
		{"*", true},
		{"*;q=0", false},
		{"identity", false},
		{"GZIP", true},
		{"gzip;q=0, *", false},
		{"gzip;q=zero", false},
	} {
		t.Run(tc.acceptEncoding, func(t *testing.T) {
			rec := newRecorder()
			if err := Serve(context.Background(), rec, upstream(textType, dcgmSmall, true), tc.acceptEncoding, DefaultNamespaceLabels, newAllow("team-a").allow); err != nil {
				t.Fatal(err)
			}
			if got := rec.Header().Get("Content-Encoding") == "gzip"; got != tc.gzip {
				t.Fatalf("gzip %v, want %v", got, tc.gzip)
			}
			if !slices.Contains(rec.Header().Values("Vary"), "Accept-Encoding") {
				t.Errorf("Vary %q, want Accept-Encoding", rec.Header().Values("Vary"))
			}
			if p, err := parse(textType, body(t, rec)); err != nil || len(p.series) != 2 {
				t.Errorf("output: %d series, error %v; want team-a's 2", len(p.series), err)
			}
		})
	}
}

// A namespace label named le or quantile (whose values the parser
// normalizes by family type) turns off the decisions kept by label set.
func TestServeLabelNamedLe(t *testing.T) {
	in := lines(`# TYPE h histogram`, `h_bucket{le="team-a"} 1`, `h_bucket{le="team-b"} 1`, `h_count 2`)
	rec := newRecorder()
	if err := Serve(context.Background(), rec, upstream(textType, in, false), "", []string{"le"}, newAllow("team-a").allow); err != nil {
		t.Fatal(err)
	}
	if got, want := body(t, rec), lines(`# TYPE h histogram`, `h_bucket{le="team-a"} 1`); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
