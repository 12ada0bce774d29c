package framework

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rbac-proxy/rbac-proxy/internal/testpki"
)

// TestStartProxy runs the real rbac-proxy binary.
func TestStartProxy(t *testing.T) {
	bin, err := Build(t.Context(), "./cmd/proxy")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(filepath.Dir(bin)) })
	ca, err := testpki.NewCA("framework test")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	serving, err := ca.Server("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := serving.Write(dir, "serving")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(caFile, ca.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	// Client certificates and static rules: no API server is needed.
	static := []string{"--upstream=http://127.0.0.1:1/", "--tls-cert-file=" + certFile, "--tls-private-key-file=" + keyFile,
		"--client-ca-file=" + caFile, "--authz=static", "--allowed-users=x"}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenPort := strconv.Itoa(taken.Addr().(*net.TCPAddr).Port)

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	status := func(url string) int {
		resp, err := client.Get(url)
		if err != nil {
			t.Errorf("GET %s: %v", url, err)
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		name string
		o    ProxyOptions
		// fail is what the error says; "" when the proxy serves.
		fail string
		// taken: the error is errPortTaken.
		taken bool
	}{
		{name: "serves", o: ProxyOptions{Args: static}},
		{name: "serves its endpoints too", o: ProxyOptions{Args: static, Endpoints: true}},
		{name: "exits on a bad flag", o: ProxyOptions{Args: append(static, "--no-such-flag")}, fail: "unknown flag: --no-such-flag"},
		{name: "finds a port taken", o: ProxyOptions{Args: append(static, "--proxy-endpoints-port="+takenPort)}, fail: "address already in use", taken: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Dir = t.TempDir()
			start := time.Now()
			p, err := StartProxy(t.Context(), bin, tc.o)
			if tc.fail != "" {
				if err == nil {
					_ = p.Stop()
					t.Fatal("the proxy started")
				}
				if !strings.Contains(err.Error(), tc.fail) || errors.Is(err, errPortTaken) != tc.taken {
					t.Fatalf("error %v, want one saying %q (a port taken: %v)", err, tc.fail, tc.taken)
				}
				// An exit is seen at once, not after the wait for a handshake.
				if d := time.Since(start); d >= proxyStartTimeout {
					t.Errorf("the error came after %v", d)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := status(p.URL + "/metrics"); got != http.StatusUnauthorized {
				t.Errorf("GET /metrics without credentials: %d, want 401", got)
			}
			if tc.o.Endpoints {
				if got := status("https://127.0.0.1:" + strconv.Itoa(p.EndpointsPort) + "/healthz"); got != http.StatusOK {
					t.Errorf("GET /healthz on the endpoints port: %d, want 200", got)
				}
			} else if p.EndpointsPort != 0 {
				t.Errorf("EndpointsPort = %d without Endpoints", p.EndpointsPort)
			}
			if err := p.Stop(); err != nil {
				t.Errorf("Stop: %v\n%s", err, p.Log())
			}
			if p.Running() {
				t.Error("running after Stop")
			}
		})
	}
}
