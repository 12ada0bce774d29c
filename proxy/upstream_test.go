package proxy

import (
	"net/url"
	"testing"
)

func TestDialAddress(t *testing.T) {
	for in, want := range map[string]string{
		"http://localhost/":        "localhost:80",
		"http://[::1]/metrics":     "[::1]:80",
		"http://127.0.0.1:9400/":   "127.0.0.1:9400",
		"http://[fe80::1%25lo]:80": "[fe80::1%lo]:80",
	} {
		u, err := url.Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := dialAddress(u); got != want {
			t.Errorf("dialAddress(%s) = %q, want %q", in, got, want)
		}
	}
}
