// Package golden is the tests' one -update switch: golden files and generated doc sections are checked against what the code produces, and rewritten under -update.
package golden

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// update is registered once for every test binary that imports this package, so that
// `go test ./... -update` means the same thing in every package.
var update = flag.Bool("update", false, "rewrite golden files and generated doc sections instead of failing on a difference")

// Update reports whether the test run was asked to rewrite what it checks.
func Update() bool { return *update }

// Check compares got with the file at path. Under -update it writes got there (creating the
// folder) instead; otherwise a difference fails the test with a line diff.
func Check(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update creates it)", err)
	}
	if diff := lineDiff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs from what the code produces (go test -update rewrites it); -file +got:\n%s", path, diff)
	}
}

// CheckSection compares the generated section of the file at path with got. The section is
// what stands between the line that ends with begin and the line that starts with end; got is
// its whole text, ending with a newline. Under -update the section is rewritten instead.
func CheckSection(t testing.TB, path, begin, end, got string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	i := strings.Index(doc, begin+"\n")
	if i < 0 {
		t.Fatalf("%s lacks the line ending with the marker %q", path, begin)
	}
	from := i + len(begin) + 1
	to := strings.Index(doc[from:], end)
	if to < 0 {
		t.Fatalf("%s lacks the marker %q after %q", path, end, begin)
	}
	to += from
	if doc[from:to] == got {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(doc[:from]+got+doc[to:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s: the section after %q differs from what the code produces (go test -update rewrites it); -file +got:\n%s",
		path, begin, lineDiff(doc[from:to], got))
}

// lineDiff is the difference between two texts line by line, each line quoted so that white
// space and a missing final newline show; "" when they are equal.
func lineDiff(want, got string) string {
	return cmp.Diff(strings.SplitAfter(want, "\n"), strings.SplitAfter(got, "\n"))
}
