package testkit

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestProjection(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	p, err := NewProjection(dir, map[string][]byte{"tls.crt": []byte("one"), "tls.key": []byte("key one")})
	if err != nil {
		t.Fatal(err)
	}
	first, err := os.Readlink(filepath.Join(dir, "..data"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		data map[string][]byte
		want map[string]string
	}{
		{"first", nil, map[string]string{"tls.crt": "one", "tls.key": "key one"}},
		{"update", map[string][]byte{"tls.crt": []byte("two"), "tls.key": []byte("key two")}, map[string]string{"tls.crt": "two", "tls.key": "key two"}},
		{"a new key", map[string][]byte{"tls.crt": []byte("three"), "tls.key": []byte("key three"), "ca.crt": []byte("ca")},
			map[string]string{"tls.crt": "three", "tls.key": "key three", "ca.crt": "ca"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.data != nil {
				if err := p.Update(tc.data); err != nil {
					t.Fatal(err)
				}
			}
			for key, want := range tc.want {
				if link, err := os.Readlink(p.Path(key)); err != nil || link != filepath.Join("..data", key) {
					t.Errorf("%s links to %q (%v), want ..data/%s", key, link, err, key)
				}
				if got, err := os.ReadFile(p.Path(key)); err != nil || string(got) != want {
					t.Errorf("%s reads %q (%v), want %q", key, got, err, want)
				}
			}
			// Only the current generation is left, beside the links.
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := os.Readlink(filepath.Join(dir, "..data"))
			for _, e := range entries {
				name := e.Name()
				if strings.HasPrefix(name, "..20") && name != data {
					t.Errorf("the earlier generation %s is still there (current %s)", name, data)
				}
			}
			if tc.data != nil && data == first {
				t.Errorf("..data still points to the first generation %s", first)
			}
		})
	}
}

func TestFreePort(t *testing.T) {
	a, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(a)))
	if err != nil {
		t.Fatalf("FreePort = %d, which cannot be bound: %v", a, err)
	}
	l.Close()
}
