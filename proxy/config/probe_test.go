package config

import (
	"strings"
	"testing"
)

func TestProbePassthroughFlag(t *testing.T) {
	good := map[string]ProbePassthrough{
		"GET:9400:/health":             {Scheme: "http", Method: "GET", Port: 9400, Path: "/health"},
		"https:HEAD:1:/":               {Scheme: "https", Method: "HEAD", Port: 1, Path: "/"},
		"http:GET:65535:/a/b/":         {Scheme: "http", Method: "GET", Port: 65535, Path: "/a/b/"},
		"GET:8080:/ready?full=1&x=a:b": {Scheme: "http", Method: "GET", Port: 8080, Path: "/ready", Query: "full=1&x=a:b"},
		"GET:80:/a:b,c":                {Scheme: "http", Method: "GET", Port: 80, Path: "/a:b,c"},
	}
	for v, want := range good {
		got, err := ParseProbePassthrough(v)
		if err != nil || got != want {
			t.Errorf("%s: %+v %v, want %+v", v, got, err, want)
			continue
		}
		if again, err := ParseProbePassthrough(got.String()); err != nil || again != got {
			t.Errorf("%s: String() %q does not round-trip", v, got.String())
		}
	}
	for _, v := range []string{
		"", "GET", "GET:9400", "POST:9400:/x", "get:9400:/x", "CONNECT:9400:/x", "GET:0:/x", "GET:65536:/x",
		"GET:09400:/x", "GET:x:/x", "GET:-1:/x", "GET:9400:x", "GET:9400:", "GET:9400:/a/../b", "GET:9400:/a//b",
		"GET:9400:/./a", "GET:9400:/a/.", "GET:9400:/a%2fb", "GET:9400:/a b", "GET:9400:/a#f", "GET:9400:/a\\b",
		"GET:9400:/a\x00", "ftp:GET:9400:/x", "https:https:GET:9400:/x", "GET:9400:/x?a#b", "GET:9400:/x?a b",
		"GET:9400:/x?a%20", "GET:9400:/x?a?b",
	} {
		if p, err := ParseProbePassthrough(v); err == nil {
			t.Errorf("%q accepted as %+v", v, p)
		} else if !strings.Contains(err.Error(), "--probe-passthrough") {
			t.Errorf("%q: error does not name the flag: %v", v, err)
		}
	}

	parse := func(args ...string) error {
		f := NewFlags("rbac-proxy")
		if err := f.Parse(append([]string{"--secure-listen-address=127.0.0.1:8443", "--upstream=http://127.0.0.1:9400/"}, args...)); err != nil {
			return err
		}
		_, err := f.Config()
		return err
	}
	if err := parse("--probe-passthrough=GET:9400:/health"); err == nil || !strings.Contains(err.Error(), "--proxy-endpoints-port") {
		t.Errorf("without an endpoints port: %v", err)
	}
	if err := parse("--proxy-endpoints-port=8444", "--probe-passthrough=GET:9400:/health", "--probe-passthrough=HEAD:9400:/health"); err == nil || !strings.Contains(err.Error(), "conflicts") {
		t.Errorf("two probes at one URI: %v", err)
	}
	if err := parse("--proxy-endpoints-port=8444", "--probe-passthrough=GET:9400:/health", "--probe-passthrough=GET:9400:/health"); err != nil {
		t.Errorf("a repeated probe: %v", err)
	}
	if err := parse("--proxy-endpoints-port=8444", "--probe-passthrough=GET:9400:/health", "--probe-passthrough=GET:9401:/health"); err != nil {
		t.Errorf("two ports: %v", err)
	}

	// A hand-built Config is checked by New as well.
	cfg := &Config{}
	if err := cfg.Validate(); err == nil {
		t.Fatal("empty config validates")
	}
	bad := ProbePassthrough{Scheme: "http", Method: "GET", Port: 9400, Path: "/a/../b"}
	if err := validateProbes(ListenConfig{ProxyEndpointsPort: 8444, ProbePassthrough: []ProbePassthrough{bad}}); err == nil {
		t.Error("an unclean path in a hand-built config validates")
	}
}
