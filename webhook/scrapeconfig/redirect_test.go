package scrapeconfig

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/common/config"

	"github.com/rbac-proxy/rbac-proxy/internal/testpki"
)

// TestRedirectSendsNoCredential: the HTTP client of Prometheus (prometheus/common's), built
// from each printed configuration, scrapes an https "proxy" that verifies as the server name
// and answers what an exporter behind it may: a 302 to plain http on another port of the same
// host. The client stops at the 302; the plain-http listener gets nothing. The same client set to
// follow redirects, Prometheus' default, sends it the token: what the test would see otherwise.
func TestRedirectSendsNoCredential(t *testing.T) {
	const token = "PROMETHEUS-TOKEN"
	var mu sync.Mutex
	var leaked []string
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		leaked = append(leaked, r.Header.Get("Authorization"))
	}))
	defer sink.Close()
	ca, err := testpki.NewCA("serving")
	if err != nil {
		t.Fatal(err)
	}
	serving, err := ca.Server("dcgm-exporter.gpu.svc")
	if err != nil {
		t.Fatal(err)
	}
	proxy := httptest.NewUnstartedServer(http.RedirectHandler(sink.URL+"/metrics", http.StatusFound))
	proxy.TLS = &tls.Config{Certificates: []tls.Certificate{serving.TLS()}}
	proxy.StartTLS()
	defer proxy.Close()
	dir := t.TempDir()
	caFile, tokenFile := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "token")
	if err := os.WriteFile(caFile, ca.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		// client is the HTTP client settings Prometheus gets from the printed output.
		client func(t *testing.T, s *Scrape) config.HTTPClientConfig
	}{
		{"prometheus", func(t *testing.T, s *Scrape) config.HTTPClientConfig {
			_, sc := loadPrometheus(t, s, TargetsStatic)
			return sc.HTTPClientConfig
		}},
		{"servicemonitor", func(t *testing.T, s *Scrape) config.HTTPClientConfig {
			sm := &monitoringv1.ServiceMonitor{}
			decodeStrict(t, write(t, s, OutputServiceMonitor), sm)
			ep := sm.Spec.Endpoints[0]
			return fromMonitor(t, s, ep.FollowRedirects, ep.TLSConfig.ServerName)
		}},
		{"podmonitor", func(t *testing.T, s *Scrape) config.HTTPClientConfig {
			pm := &monitoringv1.PodMonitor{}
			decodeStrict(t, write(t, s, OutputPodMonitor), pm)
			ep := pm.Spec.PodMetricsEndpoints[0]
			return fromMonitor(t, s, ep.FollowRedirects, ep.TLSConfig.ServerName)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := scrapeOf(t, "takeover", AuthToken)
			hc := tc.client(t, s)
			if hc.Authorization == nil || hc.TLSConfig.ServerName != "dcgm-exporter.gpu.svc" {
				t.Fatalf("no token or server name: %+v", hc)
			}
			// The files where this test has them; the rest as printed.
			hc.Authorization.CredentialsFile, hc.TLSConfig.CAFile = tokenFile, caFile
			scrape := func(hc config.HTTPClientConfig) (int, []string) {
				c, err := config.NewClientFromConfig(hc, "job")
				if err != nil {
					t.Fatal(err)
				}
				resp, err := c.Get(proxy.URL + "/metrics")
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				mu.Lock()
				defer mu.Unlock()
				got := leaked
				leaked = nil
				return resp.StatusCode, got
			}
			if code, got := scrape(hc); hc.FollowRedirects || code != http.StatusFound || len(got) > 0 {
				t.Errorf("as printed (follow_redirects %t): %d, the plain-http listener got %q; want the 302 and nothing there", hc.FollowRedirects, code, got)
			}
			hc.FollowRedirects = true
			if _, got := scrape(hc); len(got) != 1 || got[0] != "Bearer "+token {
				t.Errorf("following redirects: the plain-http listener got %q; want the token (else this test sees no leak)", got)
			}
		})
	}
}

// fromMonitor is the HTTP client settings prometheus-operator writes for a monitor's endpoint:
// its own followRedirects (Prometheus' default, true, when unset), server name and CA, and the
// token of its scrape class.
func fromMonitor(t *testing.T, s *Scrape, follow *bool, serverName *string) config.HTTPClientConfig {
	t.Helper()
	hc := config.DefaultHTTPClientConfig
	if follow != nil {
		hc.FollowRedirects = *follow
	}
	if serverName != nil {
		hc.TLSConfig.ServerName = *serverName
	}
	a := s.Prometheus().ScrapeClasses[0].Authorization
	hc.Authorization = &config.Authorization{Type: a.Type, CredentialsFile: a.CredentialsFile}
	return hc
}
