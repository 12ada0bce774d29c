package golden

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// recorder stands in for the test a helper reports to, so that a failure can be asserted.
type recorder struct {
	testing.TB
	failures []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

func (r *recorder) Fatal(args ...any) {
	r.Errorf("%s", fmt.Sprint(args...))
	runtime.Goexit()
}

// run calls check on a recorder in a goroutine of its own, since Fatal ends it.
func run(t *testing.T, check func(testing.TB)) []string {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		check(r)
	}()
	<-done
	return r.failures
}

func withUpdate(t *testing.T, on bool) {
	old := *update
	*update = on
	t.Cleanup(func() { *update = old })
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name     string
		file     *string // nil: no file
		got      string
		update   bool
		failure  string // "" : none
		wantFile string
	}{
		{name: "same", file: ptr("a\nb\n"), got: "a\nb\n", wantFile: "a\nb\n"},
		{name: "differs", file: ptr("a\nb\n"), got: "a\nc\n", failure: "differs from what the code produces", wantFile: "a\nb\n"},
		{name: "diff by line", file: ptr("1\n2\n3\n4\n5\n6\n"), got: "1\n2\n3\nfour\n5\n6\n", failure: `"four\n"`, wantFile: "1\n2\n3\n4\n5\n6\n"},
		{name: "missing", got: "a\n", failure: "go test -update creates it"},
		{name: "differs, -update", file: ptr("a\nb\n"), got: "a\nc\n", update: true, wantFile: "a\nc\n"},
		{name: "missing, -update", got: "a\n", update: true, wantFile: "a\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			withUpdate(t, tc.update)
			path := filepath.Join(t.TempDir(), "sub", "x.golden")
			if tc.file != nil {
				write(t, path, *tc.file)
			}
			failures := run(t, func(tb testing.TB) { Check(tb, path, []byte(tc.got)) })
			assertFailure(t, failures, tc.failure)
			if tc.wantFile != "" {
				if got := read(t, path); got != tc.wantFile {
					t.Errorf("file is %q, want %q", got, tc.wantFile)
				}
			}
		})
	}
}

func TestCheckSection(t *testing.T) {
	const begin, end = "<!-- BEGIN X -->", "<!-- END X -->"
	doc := func(section string) string { return "head\n" + begin + "\n" + section + end + "\ntail\n" }
	for _, tc := range []struct {
		name     string
		file     string
		got      string
		update   bool
		failure  string
		wantFile string
	}{
		{name: "same", file: doc("| a |\n"), got: "| a |\n", wantFile: doc("| a |\n")},
		{name: "differs", file: doc("| a |\n"), got: "| b |\n", failure: "differs from what the code produces", wantFile: doc("| a |\n")},
		{name: "differs, -update", file: doc("| a |\n"), got: "| b |\n| c |\n", update: true, wantFile: doc("| b |\n| c |\n")},
		{name: "empty section, -update", file: doc(""), got: "| a |\n", update: true, wantFile: doc("| a |\n")},
		{name: "no begin marker", file: "head\n" + end + "\n", got: "x\n", update: true, failure: "lacks the line ending with the marker", wantFile: "head\n" + end + "\n"},
		{name: "end before begin", file: end + "\n" + begin + "\n", got: "x\n", update: true, failure: "lacks the marker", wantFile: end + "\n" + begin + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			withUpdate(t, tc.update)
			path := filepath.Join(t.TempDir(), "doc.md")
			write(t, path, tc.file)
			failures := run(t, func(tb testing.TB) { CheckSection(tb, path, begin, end, tc.got) })
			assertFailure(t, failures, tc.failure)
			if got := read(t, path); got != tc.wantFile {
				t.Errorf("file is %q, want %q", got, tc.wantFile)
			}
		})
	}
}

func assertFailure(t *testing.T, failures []string, want string) {
	t.Helper()
	switch {
	case want == "" && len(failures) > 0:
		t.Errorf("unexpected failure: %q", failures)
	case want != "" && (len(failures) != 1 || !strings.Contains(failures[0], want)):
		t.Errorf("failures %q, want one containing %q", failures, want)
	}
}

func ptr(s string) *string { return &s }

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(b)
}
