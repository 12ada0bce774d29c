package tenancy

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rbac-proxy/rbac-proxy/proxy/tenancy/tenancytest"
)

// checkFiltered fails unless out, the filter's output for in, parses, shows
// exactly the series of in that are visible (in order), and keeps the
// metadata of a family only when one of its series is shown.
func checkFiltered(t testing.TB, contentType, in, out string, names []string, a *allowOnly) {
	t.Helper()
	whole, err := parse(contentType, in)
	if err != nil {
		t.Fatalf("the input does not parse: %v", err)
	}
	var want []string
	for _, ls := range whole.series {
		if wantVisible(ls, names, a) {
			want = append(want, ls.String())
		}
	}
	got, err := parse(contentType, out)
	if err != nil {
		t.Fatalf("the output does not parse: %v\n%s", err, out)
	}
	if diff := cmp.Diff(want, seriesKeys(got)); diff != "" {
		t.Fatalf("series shown (-visible +got):\n%s", diff)
	}
}

// Every chunk size cuts families, metadata blocks and OpenMetrics histograms
// somewhere; the output is the same as in one piece.
func TestServeChunks(t *testing.T) {
	for _, tc := range []struct {
		name, contentType, in string
	}{
		{"dcgm 8 GPUs", textType, tenancytest.DCGM(tenancytest.EightGPUs, 1)},
		{"dcgm small", textType, dcgmSmall},
		{"OpenMetrics", omType, omSmall},
		{"AMD 64 KiB", textType, tenancytest.AMD(64 << 10)},
	} {
		for _, allowed := range [][]string{{"team-a"}, {"team-b"}, {"team-a", "team-b"}} {
			a := newAllow(allowed...)
			want := newRecorder()
			if err := Serve(context.Background(), want, upstream(tc.contentType, tc.in, false), "", DefaultNamespaceLabels, a.allow); err != nil {
				t.Fatalf("%s %v: %v", tc.name, allowed, err)
			}
			checkFiltered(t, tc.contentType, tc.in, body(t, want), DefaultNamespaceLabels, a)
			for _, size := range []int{1, 7, 64, 200, 333, 1000, 4096} {
				t.Run(fmt.Sprintf("%s/%v/%d", tc.name, allowed, size), func(t *testing.T) {
					rec := newRecorder()
					if err := serve(context.Background(), rec, upstream(tc.contentType, tc.in, false), "", DefaultNamespaceLabels, a.allow, size); err != nil {
						t.Fatal(err)
					}
					if diff := cmp.Diff(body(t, want), body(t, rec)); diff != "" {
						t.Errorf("output in chunks of %d (-whole +chunks):\n%s", size, diff)
					}
				})
			}
		}
	}
}

// A family longer than a chunk whose first visible series comes late keeps
// its metadata, written once.
func TestServeLongFamily(t *testing.T) {
	in := "# HELP gpu_clock Clock.\n# TYPE gpu_clock gauge\n"
	for i := 0; i < 3000; i++ {
		ns := "team-b"
		if i%1000 == 999 {
			ns = "team-a"
		}
		in += fmt.Sprintf("gpu_clock{gpu_id=\"%d\",namespace=%q} %d\n", i, ns, i)
	}
	rec := newRecorder()
	if err := Serve(context.Background(), rec, upstream(textType, in, false), "", DefaultNamespaceLabels, newAllow("team-a").allow); err != nil {
		t.Fatal(err)
	}
	want := lines("# HELP gpu_clock Clock.", "# TYPE gpu_clock gauge",
		`gpu_clock{gpu_id="999",namespace="team-a"} 999`,
		`gpu_clock{gpu_id="1999",namespace="team-a"} 1999`,
		`gpu_clock{gpu_id="2999",namespace="team-a"} 2999`)
	if diff := cmp.Diff(want, body(t, rec)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
