package tenancy

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// An upstream that repeats a family's metadata lines cannot make the filter's
// work grow with their square: the repeats replace the line kept, so each
// chunk begins with at most three of them. 40,000 repeats took 83 s before.
func TestRepeatedMetadataStaysLinear(t *testing.T) {
	var b strings.Builder
	b.WriteString("# TYPE foo gauge\n" + `foo{namespace="team-a"} 1` + "\n")
	for range 40000 {
		b.WriteString("# HELP foo x\n")
	}
	b.WriteString(`foo{namespace="team-a",pod="p"} 2` + "\n")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rec := newRecorder()
	start := time.Now()
	if err := Serve(ctx, rec, upstream(textType, b.String(), false), "", DefaultNamespaceLabels, newAllow("team-a").allow); err != nil {
		t.Fatalf("Serve: %v (after %v)", err, time.Since(start))
	}
	if got := rec.Body.String(); !strings.Contains(got, `foo{namespace="team-a",pod="p"} 2`) {
		t.Errorf("the last series is missing from %d bytes", len(got))
	}
	t.Logf("520 KB of repeated metadata filtered in %v", time.Since(start).Round(time.Millisecond))
}

// One scrape asks about at most MaxNamespaces namespaces; an exposition that
// names more fails closed, with nothing written and no more questions asked.
func TestServeBoundsTheNamespacesAsked(t *testing.T) {
	var b strings.Builder
	for i := range MaxNamespaces + 10 {
		fmt.Fprintf(&b, "x{namespace=\"ns-%d\"} 1\n", i)
	}
	a := newAllow() // allows none: nothing is written before the bound
	rec := newRecorder()
	err := Serve(context.Background(), rec, upstream(textType, b.String(), false), "", DefaultNamespaceLabels, a.allow)
	if err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("error %v, want the namespace bound", err)
	}
	if len(a.asked) != MaxNamespaces {
		t.Errorf("asked about %d namespaces, want %d", len(a.asked), MaxNamespaces)
	}
	if rec.wroteHeader {
		t.Error("wrote a response")
	}
}
