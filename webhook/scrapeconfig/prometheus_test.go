package scrapeconfig

import (
	"bytes"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"

	commonconfig "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/discovery/kubernetes"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"
	"go.yaml.in/yaml/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// scrapeConfig is an item of scrape_configs as Prometheus parses each key scrape-config writes:
// the HTTP client, Kubernetes discovery, static targets and relabelling in Prometheus' own types,
// whose UnmarshalYAML apply its defaults and checks, strict about unknown keys as config.Load
// is. Prometheus' config package itself is not used: it would link its remote-write clients'
// cloud SDKs (238 packages) into this test for nothing scrape-config writes. Debian's
// Prometheus loads the static form for real (test/e2e/realnode).
type scrapeConfig struct {
	JobName             string                        `yaml:"job_name"`
	Scheme              string                        `yaml:"scheme"`
	MetricsPath         string                        `yaml:"metrics_path"`
	HTTPClientConfig    commonconfig.HTTPClientConfig `yaml:",inline"`
	KubernetesSDConfigs []*kubernetes.SDConfig        `yaml:"kubernetes_sd_configs,omitempty"`
	StaticConfigs       []*targetgroup.Group          `yaml:"static_configs,omitempty"`
	RelabelConfigs      []*relabel.Config             `yaml:"relabel_configs,omitempty"`
}

// loadPrometheus prints the scrape_config as scrape-config does and parses it as Prometheus
// does, with the checks Prometheus makes of each part.
func loadPrometheus(t *testing.T, s *Scrape, targets Targets) (string, *scrapeConfig) {
	t.Helper()
	var b bytes.Buffer
	if err := s.Write(&b, Options{Output: OutputPrometheus, Targets: targets}); err != nil {
		t.Fatal(err)
	}
	var items []*scrapeConfig
	if err := yaml.UnmarshalStrict(b.Bytes(), &items); err != nil {
		t.Fatalf("Prometheus refuses the scrape_config: %v\n%s", err, b.String())
	}
	if len(items) != 1 {
		t.Fatalf("%d scrape configs, want 1:\n%s", len(items), b.String())
	}
	sc := items[0]
	if err := sc.HTTPClientConfig.Validate(); err != nil {
		t.Fatalf("Prometheus refuses the HTTP client settings: %v\n%s", err, b.String())
	}
	for i, r := range sc.RelabelConfigs {
		if err := r.Validate(model.UTF8Validation); err != nil {
			t.Fatalf("Prometheus refuses relabel_configs[%d]: %v\n%s", i, err, b.String())
		}
	}
	if sc.Scheme != "http" && sc.Scheme != "https" {
		t.Fatalf("Prometheus refuses scheme %q:\n%s", sc.Scheme, b.String())
	}
	if sc.JobName == "" || len(sc.KubernetesSDConfigs)+len(sc.StaticConfigs) == 0 {
		t.Fatalf("no job name or no targets:\n%s", b.String())
	}
	return b.String(), sc
}

// TestScrapeConfigLoads: the plain scrape_config of every mode, credential and target source
// is one Prometheus loads, and says what the Scrape says.
func TestScrapeConfigLoads(t *testing.T) {
	for _, mode := range []string{"takeover", "redirect", "rename"} {
		for _, auth := range Auths() {
			for _, targets := range TargetsModes() {
				t.Run(fmt.Sprintf("%s/%s/%s", mode, auth, targets), func(t *testing.T) {
					s, pod := scrapeOf(t, mode, auth)
					text, sc := loadPrometheus(t, s, targets)
					hc := sc.HTTPClientConfig
					if sc.JobName != s.JobName() || sc.Scheme != "https" || sc.MetricsPath != s.Path {
						t.Errorf("job %s %s %s, want %s https %s", sc.JobName, sc.Scheme, sc.MetricsPath, s.JobName(), s.Path)
					}
					if hc.TLSConfig.CAFile != SecretFile(secret, "ca.crt") || hc.TLSConfig.ServerName != s.ServerName || hc.TLSConfig.InsecureSkipVerify {
						t.Errorf("tls_config %+v", hc.TLSConfig)
					}
					switch auth {
					case AuthToken:
						if a := hc.Authorization; a == nil || a.Type != "Bearer" || a.CredentialsFile != TokensDir+"/rbac-proxy-gpu/token" || hc.TLSConfig.CertFile != "" {
							t.Errorf("authorization %+v, cert %q; want a Bearer credentials_file and no certificate", a, hc.TLSConfig.CertFile)
						}
					case AuthCert:
						if hc.Authorization != nil || hc.TLSConfig.CertFile != SecretFile("prometheus-tls", "tls.crt") || hc.TLSConfig.KeyFile != SecretFile("prometheus-tls", "tls.key") {
							t.Errorf("authorization %+v, tls_config %+v; want the client certificate alone", hc.Authorization, hc.TLSConfig)
						}
					}
					if hc.FollowRedirects {
						t.Errorf("follow_redirects: true (TestRedirectSendsNoCredential):\n%s", text)
					}
					if hc.BearerTokenFile != "" || strings.Contains(text, "bearer_token") {
						t.Errorf("the deprecated bearer_token_file is used:\n%s", text)
					}
					addrs := discovered(t, pod, sc, targets)
					want := []string{net.JoinHostPort("10.0.0.10", strconv.Itoa(int(s.Port.Number)))}
					if strings.Join(addrs, ",") != strings.Join(want, ",") {
						t.Errorf("scrapes %v, want %v:\n%s", addrs, want, text)
					}
				})
			}
		}
	}
}

// scrapeOf describes the exporter's Deployment in the port mode with one injected Pod, which
// it returns too.
func scrapeOf(t *testing.T, mode string, auth Auth) (*Scrape, *corev1.Pod) {
	t.Helper()
	image, ann := "dcgm-exporter", with(local)
	switch mode {
	case "redirect":
		ann[inject.AnnotationPortMode] = "redirect"
	case "rename":
		image = "generic"
	}
	c := cluster{tmpl: exporter(image, ann), pods: 1, dnsNames: []string{"dcgm-exporter.gpu.svc"},
		services: []corev1.Service{service("metrics", serviceLabels, "metrics", intstr.FromString("metrics"))}}
	s, _, err := describe(t, c, auth, "prometheus-tls")
	if err != nil {
		t.Fatal(err)
	}
	return s, renderPod(t, testDefaults(t), c.tmpl, 0)
}

// discovered are the addresses Prometheus scrapes: the static targets, or the targets
// Kubernetes discovery makes of the injected Pod (one per container port, init containers'
// too) that survive the loaded relabelling.
func discovered(t *testing.T, pod *corev1.Pod, sc *scrapeConfig, targets Targets) []string {
	t.Helper()
	var addrs []string
	check := func(ls labels.Labels) {
		addrs = append(addrs, ls.Get(model.AddressLabel))
		if ls.Get("namespace") != testNS || ls.Get("pod") != pod.Name {
			t.Errorf("target labels %s, want namespace %s and pod %s", ls, testNS, pod.Name)
		}
	}
	if targets == TargetsStatic {
		if len(sc.KubernetesSDConfigs) > 0 {
			t.Fatalf("kubernetes_sd_configs with --targets static")
		}
		for _, g := range sc.StaticConfigs {
			for _, target := range g.Targets {
				check(labels.FromMap(map[string]string{model.AddressLabel: string(target[model.AddressLabel]),
					"namespace": string(g.Labels["namespace"]), "pod": string(g.Labels["pod"])}))
			}
		}
		return addrs
	}
	if len(sc.StaticConfigs) > 0 || len(sc.KubernetesSDConfigs) != 1 || sc.KubernetesSDConfigs[0].Role != kubernetes.RolePod {
		t.Fatalf("with --targets kubernetes: %d static configs, %d Kubernetes discoveries, want one of role pod", len(sc.StaticConfigs), len(sc.KubernetesSDConfigs))
	}
	for _, cs := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for _, ctr := range cs {
			for _, p := range ctr.Ports {
				b := labels.NewBuilder(labels.EmptyLabels())
				b.Set(model.AddressLabel, net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(int(p.ContainerPort))))
				b.Set(metaNamespace, pod.Namespace)
				b.Set(metaPodName, pod.Name)
				b.Set(metaPodPhase, string(pod.Status.Phase))
				b.Set(metaPortNumber, strconv.Itoa(int(p.ContainerPort)))
				for k, v := range pod.Labels {
					b.Set(metaPodLabel+invalidLabelChars.ReplaceAllString(k, "_"), v)
				}
				if relabel.ProcessBuilder(b, sc.RelabelConfigs...) {
					check(b.Labels())
				}
			}
		}
	}
	return addrs
}
