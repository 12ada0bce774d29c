package testkit

import (
	"os"
	"path/filepath"
	"testing"
)

// WriteFile writes content to a file called name in a folder of t's own and returns its path.
func WriteFile(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
