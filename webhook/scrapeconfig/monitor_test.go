package scrapeconfig

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"sigs.k8s.io/yaml"
)

// decodeStrict reads the printed YAML back into the typed object, refusing any field the type
// does not have.
func decodeStrict(t *testing.T, text string, into any) {
	t.Helper()
	if err := yaml.UnmarshalStrict([]byte(text), into); err != nil {
		t.Fatalf("%v:\n%s", err, text)
	}
}

// TestMonitorsRoundTrip: the printed ServiceMonitor and PodMonitor read back through
// prometheus-operator's typed API as the same object, which its own validation accepts, in
// https with the serving CA and server name and the chosen credentials, never bearerTokenFile.
func TestMonitorsRoundTrip(t *testing.T) {
	for _, mode := range []string{"takeover", "redirect", "rename"} {
		for _, auth := range Auths() {
			s, _ := scrapeOf(t, mode, auth)
			t.Run(mode+"/"+string(auth)+"/servicemonitor", func(t *testing.T) {
				text := write(t, s, OutputServiceMonitor)
				want, err := s.ServiceMonitor()
				if err != nil {
					t.Fatal(err)
				}
				got := &monitoringv1.ServiceMonitor{}
				decodeStrict(t, text, got)
				if diff := cmp.Diff(want, got); diff != "" {
					t.Fatalf("-printed +read back:\n%s", diff)
				}
				if got.Kind != "ServiceMonitor" || got.APIVersion != "monitoring.coreos.com/v1" || got.Namespace != testNS {
					t.Errorf("%s %s in %q", got.APIVersion, got.Kind, got.Namespace)
				}
				ep := got.Spec.Endpoints[0]
				if err := ep.HTTPConfigWithProxyAndTLSFiles.Validate(); err != nil {
					t.Errorf("prometheus-operator's validation refuses the endpoint: %v", err)
				}
				if ep.Port != "metrics" || ep.Path != "/metrics" || ep.BearerTokenFile != "" {
					t.Errorf("endpoint port %q path %q bearerTokenFile %q", ep.Port, ep.Path, ep.BearerTokenFile)
				}
				checkTLS(t, s, &ep.TLSConfig.SafeTLSConfig, ep.Scheme, got.Spec.ScrapeClassName)
				checkPrometheusPart(t, s, text)
			})
			t.Run(mode+"/"+string(auth)+"/podmonitor", func(t *testing.T) {
				text := write(t, s, OutputPodMonitor)
				got := &monitoringv1.PodMonitor{}
				decodeStrict(t, text, got)
				if diff := cmp.Diff(s.PodMonitor(), got); diff != "" {
					t.Fatalf("-printed +read back:\n%s", diff)
				}
				ep := got.Spec.PodMetricsEndpoints[0]
				if err := ep.HTTPConfig.Validate(); err != nil {
					t.Errorf("prometheus-operator's validation refuses the endpoint: %v", err)
				}
				if ep.Port == nil || *ep.Port != s.Port.Name {
					t.Errorf("endpoint port %v, want %s", ep.Port, s.Port.Name)
				}
				if diff := cmp.Diff(s.PodLabels, got.Spec.Selector.MatchLabels); diff != "" {
					t.Errorf("selector: -Pod labels +got:\n%s", diff)
				}
				checkTLS(t, s, ep.TLSConfig, ep.Scheme, got.Spec.ScrapeClassName)
				checkPrometheusPart(t, s, text)
			})
		}
	}
}

func write(t *testing.T, s *Scrape, o Output) string {
	t.Helper()
	var b bytes.Buffer
	if err := s.Write(&b, Options{Output: o, PrometheusNamespace: "monitoring"}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func checkTLS(t *testing.T, s *Scrape, tls *monitoringv1.SafeTLSConfig, scheme *monitoringv1.Scheme, class *string) {
	t.Helper()
	if scheme.String() != "https" {
		t.Errorf("scheme %s, want https", scheme.String())
	}
	if tls.CA.Secret == nil || tls.CA.Secret.Name != secret || tls.CA.Secret.Key != "ca.crt" || tls.ServerName == nil || *tls.ServerName != "dcgm-exporter.gpu.svc" {
		t.Errorf("tlsConfig %+v: want ca.crt of %s and the server name", tls, secret)
	}
	switch s.Auth {
	case AuthToken:
		if class == nil || *class != "rbac-proxy-gpu" || tls.Cert.Secret != nil {
			t.Errorf("scrapeClass %v, cert %v: want the token's class and no certificate", class, tls.Cert.Secret)
		}
	case AuthCert:
		if class != nil || tls.Cert.Secret == nil || tls.Cert.Secret.Name != "prometheus-tls" || tls.KeySecret == nil || tls.KeySecret.Key != "tls.key" {
			t.Errorf("scrapeClass %v, cert %+v, key %+v: want the client certificate alone", class, tls.Cert, tls.KeySecret)
		}
	}
}

// checkPrometheusPart: in token mode the comment holds the Prometheus part, which reads back
// as a typed Prometheus whose scrape class reads the projected token of the proxy's audience.
func checkPrometheusPart(t *testing.T, s *Scrape, text string) {
	t.Helper()
	const start = "#   apiVersion: monitoring.coreos.com/v1"
	i := strings.Index(text, start)
	if s.Auth == AuthCert {
		if i >= 0 {
			t.Errorf("cert mode prints a Prometheus part:\n%s", text)
		}
		return
	}
	if i < 0 {
		t.Fatalf("no Prometheus part:\n%s", text)
	}
	var part []string
	for _, line := range strings.Split(text[i:], "\n") {
		rest, ok := strings.CutPrefix(line, "#   ")
		if !ok {
			break
		}
		part = append(part, rest)
	}
	p := &monitoringv1.Prometheus{}
	decodeStrict(t, strings.Join(part, "\n"), p)
	want := s.Prometheus()
	if diff := cmp.Diff(want, &PrometheusPart{ScrapeClasses: p.Spec.ScrapeClasses, Volumes: p.Spec.Volumes, VolumeMounts: p.Spec.VolumeMounts}); diff != "" {
		t.Fatalf("-printed +read back:\n%s", diff)
	}
	if p.Namespace != "monitoring" || p.Kind != "Prometheus" {
		t.Errorf("%s in %q", p.Kind, p.Namespace)
	}
	sc := p.Spec.ScrapeClasses
	if len(sc) != 1 || sc[0].Name != "rbac-proxy-gpu" || sc[0].Authorization == nil || sc[0].Authorization.CredentialsFile != TokensDir+"/rbac-proxy-gpu/token" {
		t.Fatalf("scrape classes %+v", sc)
	}
	if err := sc[0].Authorization.Validate(); err != nil {
		t.Error(err)
	}
	v := p.Spec.Volumes
	if len(v) != 1 || v[0].Projected == nil || v[0].Projected.Sources[0].ServiceAccountToken.Audience != "rbac-proxy:gpu" {
		t.Errorf("volumes %+v, want the projected token of audience rbac-proxy:gpu", v)
	}
	if m := p.Spec.VolumeMounts; len(m) != 1 || m[0].MountPath+"/token" != sc[0].Authorization.CredentialsFile {
		t.Errorf("volume mounts %+v", m)
	}
}

// TestPrometheusPartOwnToken: with the API server's own audience (review mode), the scrape
// class reads Prometheus' own token and needs no volume.
func TestPrometheusPartOwnToken(t *testing.T) {
	s := &Scrape{Auth: AuthToken}
	p := s.Prometheus()
	if a := p.ScrapeClasses[0].Authorization; a.CredentialsFile != "/var/run/secrets/kubernetes.io/serviceaccount/token" || len(p.Volumes) > 0 {
		t.Errorf("authorization %+v, volumes %v", a, p.Volumes)
	}
	if (&Scrape{Auth: AuthCert}).Prometheus() != nil {
		t.Error("cert mode needs no Prometheus part")
	}
}

func TestServiceMonitorNeedsALabelledService(t *testing.T) {
	for _, tc := range []struct {
		s    Scrape
		want string
	}{
		{Scrape{Namespace: testNS, Port: PodPort{"metrics", 9400}}, "no Service in namespace gpu selects the Pods of"},
		{Scrape{Namespace: testNS, Service: &ServicePort{Service: "bare"}}, "Service gpu/bare has no labels for a ServiceMonitor to select it by"},
	} {
		if _, err := tc.s.ServiceMonitor(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want %q", err, tc.want)
		}
	}
}
