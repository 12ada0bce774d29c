package scrapeconfig

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
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
// https with the serving CA and server name and the scrape class of the chosen credentials,
// never bearerTokenFile; they name no Secret but those of their own namespace, where
// prometheus-operator looks for it, and print no empty object.
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
				if ep.FollowRedirects == nil || *ep.FollowRedirects {
					t.Errorf("followRedirects %v, want false (TestRedirectSendsNoCredential)", ep.FollowRedirects)
				}
				if err := ep.HTTPConfigWithProxyAndTLSFiles.Validate(); err != nil {
					t.Errorf("prometheus-operator's validation refuses the endpoint: %v", err)
				}
				if ep.Port != "metrics" || ep.Path != "/metrics" || ep.BearerTokenFile != "" {
					t.Errorf("endpoint port %q path %q bearerTokenFile %q", ep.Port, ep.Path, ep.BearerTokenFile)
				}
				checkTLS(t, s, &ep.TLSConfig.SafeTLSConfig, ep.Scheme, got.Spec.ScrapeClassName)
				checkOwnSecrets(t, got, text)
				checkPrometheusPart(t, s, text, ep.TLSConfig)
			})
			t.Run(mode+"/"+string(auth)+"/podmonitor", func(t *testing.T) {
				text := write(t, s, OutputPodMonitor)
				got := &monitoringv1.PodMonitor{}
				decodeStrict(t, text, got)
				if diff := cmp.Diff(s.PodMonitor(), got); diff != "" {
					t.Fatalf("-printed +read back:\n%s", diff)
				}
				ep := got.Spec.PodMetricsEndpoints[0]
				if ep.FollowRedirects == nil || *ep.FollowRedirects {
					t.Errorf("followRedirects %v, want false (TestRedirectSendsNoCredential)", ep.FollowRedirects)
				}
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
				checkOwnSecrets(t, got, text)
				checkPrometheusPart(t, s, text, &monitoringv1.TLSConfig{SafeTLSConfig: *ep.TLSConfig})
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
	want := map[Auth]string{AuthToken: "rbac-proxy-gpu", AuthCert: "rbac-proxy-client-prometheus-tls"}[s.Auth]
	if class == nil || *class != want || tls.Cert != (monitoringv1.SecretOrConfigMap{}) || tls.KeySecret != nil {
		t.Errorf("scrapeClass %v, cert %+v, key %+v: want scrape class %s and no certificate of the monitor's own", class, tls.Cert, tls.KeySecret, want)
	}
}

// checkOwnSecrets: every Secret the monitor names is one of its namespace's, the serving
// Secret; and no empty object is printed.
func checkOwnSecrets(t *testing.T, monitor any, text string) {
	t.Helper()
	for _, name := range secretRefs(reflect.ValueOf(monitor)) {
		if name != secret {
			t.Errorf("the monitor names Secret %s, which is not in its namespace %s (only %s is):\n%s", name, testNS, secret, text)
		}
	}
	if strings.Contains(text, "{}") {
		t.Errorf("an empty object is printed:\n%s", text)
	}
}

// secretRefs are the names of the Secrets v refers to: prometheus-operator's API refers to each
// by a SecretKeySelector.
func secretRefs(v reflect.Value) []string {
	var out []string
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			out = secretRefs(v.Elem())
		}
	case reflect.Struct:
		if sel, ok := v.Interface().(corev1.SecretKeySelector); ok {
			return []string{sel.Name}
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				out = append(out, secretRefs(v.Field(i))...)
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			out = append(out, secretRefs(v.Index(i))...)
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			out = append(out, secretRefs(v.MapIndex(k))...)
		}
	}
	return out
}

// checkPrometheusPart: the comment holds the Prometheus part, which reads back as a typed
// Prometheus whose scrape class, named by the monitor, carries the credentials: in token mode
// the projected token of the proxy's audience; in cert mode the files of the client
// certificate's Secret, which the Prometheus mounts (spec.secrets) where the plain
// scrape_config reads them too, and which, merged into the endpoint's tlsConfig as
// prometheus-operator merges them (a file fills only what the endpoint leaves empty), make a
// complete client certificate.
func checkPrometheusPart(t *testing.T, s *Scrape, text string, endpointTLS *monitoringv1.TLSConfig) {
	t.Helper()
	part := PrometheusPartIn(text)
	if part == "" {
		t.Fatalf("no Prometheus part:\n%s", text)
	}
	p := &monitoringv1.Prometheus{}
	decodeStrict(t, part, p)
	want := s.Prometheus()
	if diff := cmp.Diff(want, &PrometheusPart{ScrapeClasses: p.Spec.ScrapeClasses, Secrets: p.Spec.Secrets, Volumes: p.Spec.Volumes, VolumeMounts: p.Spec.VolumeMounts}); diff != "" {
		t.Fatalf("-printed +read back:\n%s", diff)
	}
	if p.Namespace != "monitoring" || p.Kind != "Prometheus" {
		t.Errorf("%s in %q", p.Kind, p.Namespace)
	}
	sc := p.Spec.ScrapeClasses
	if len(sc) != 1 || sc[0].Name != s.ScrapeClassName() {
		t.Fatalf("scrape classes %+v, want one named %s", sc, s.ScrapeClassName())
	}
	if err := sc[0].TLSConfig.Validate(); err != nil {
		t.Error(err)
	}
	if err := sc[0].Authorization.Validate(); err != nil {
		t.Error(err)
	}
	switch s.Auth {
	case AuthToken:
		if sc[0].Authorization == nil || sc[0].Authorization.CredentialsFile != TokensDir+"/rbac-proxy-gpu/token" || sc[0].TLSConfig != nil || len(p.Spec.Secrets) > 0 {
			t.Fatalf("scrape class %+v, secrets %v: want the token file alone", sc[0], p.Spec.Secrets)
		}
		v := p.Spec.Volumes
		if len(v) != 1 || v[0].Projected == nil || v[0].Projected.Sources[0].ServiceAccountToken.Audience != "rbac-proxy:gpu" {
			t.Errorf("volumes %+v, want the projected token of audience rbac-proxy:gpu", v)
		}
		if m := p.Spec.VolumeMounts; len(m) != 1 || m[0].MountPath+"/token" != sc[0].Authorization.CredentialsFile {
			t.Errorf("volume mounts %+v", m)
		}
	case AuthCert:
		plain := s.ScrapeConfig(TargetsKubernetes).HTTPClientConfig.TLSConfig
		files := monitoringv1.TLSFilesConfig{CertFile: "/etc/prometheus/secrets/prometheus-tls/tls.crt", KeyFile: "/etc/prometheus/secrets/prometheus-tls/tls.key"}
		if sc[0].Authorization != nil || sc[0].TLSConfig == nil || sc[0].TLSConfig.TLSFilesConfig != files || plain.CertFile != files.CertFile || plain.KeyFile != files.KeyFile {
			t.Fatalf("scrape class %+v, scrape_config's files %s %s: want the files of Secret prometheus-tls in both", sc[0], plain.CertFile, plain.KeyFile)
		}
		if len(p.Spec.Secrets) != 1 || p.Spec.Secrets[0] != "prometheus-tls" || len(p.Spec.Volumes) > 0 {
			t.Errorf("secrets %v, volumes %v: want Secret prometheus-tls mounted", p.Spec.Secrets, p.Spec.Volumes)
		}
		merged := endpointTLS.DeepCopy()
		if merged.Cert == (monitoringv1.SecretOrConfigMap{}) && merged.CertFile == "" {
			merged.CertFile = sc[0].TLSConfig.CertFile
		}
		if merged.KeySecret == nil && merged.KeyFile == "" {
			merged.KeyFile = sc[0].TLSConfig.KeyFile
		}
		if err := merged.Validate(); err != nil || merged.CertFile != files.CertFile || merged.KeyFile != files.KeyFile {
			t.Errorf("the endpoint's tlsConfig merged with the scrape class's: %+v (%v), want the class's files", merged, err)
		}
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
