package scrapeconfig

import (
	"net"
	"regexp"
	"sort"
	"strconv"

	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	"github.com/prometheus/prometheus/model/relabel"
)

// Targets says how a plain scrape_config finds the Pods.
type Targets string

const (
	// TargetsKubernetes: kubernetes_sd_configs role pod, kept by the Pods' labels and the port.
	TargetsKubernetes Targets = "kubernetes"
	// TargetsStatic: the Pods' current IPs, for a Prometheus without Kubernetes discovery.
	TargetsStatic Targets = "static"
)

// TargetsModes are the values of --targets.
func TargetsModes() []Targets { return []Targets{TargetsKubernetes, TargetsStatic} }

// ScrapeConfig is one item of Prometheus' scrape_configs. The HTTP client, the targets and the
// relabelling are Prometheus' own types; the job's own keys, and the two of kubernetes_sd_configs
// it sets, are all that is written here, and the tests load the result with Prometheus' parser.
type ScrapeConfig struct {
	JobName     string `yaml:"job_name"`
	Scheme      string `yaml:"scheme"`
	MetricsPath string `yaml:"metrics_path"`

	HTTPClientConfig config.HTTPClientConfig `yaml:",inline"`

	KubernetesSDConfigs []KubernetesSDConfig `yaml:"kubernetes_sd_configs,omitempty"`
	StaticConfigs       []*targetgroup.Group `yaml:"static_configs,omitempty"`
	RelabelConfigs      []*relabel.Config    `yaml:"relabel_configs,omitempty"`
}

// KubernetesSDConfig is the part of Prometheus' kubernetes_sd_configs item a scrape of one
// namespace's Pods sets: discovery.kubernetes.SDConfig would link all of Prometheus' discovery.
type KubernetesSDConfig struct {
	Role       string                 `yaml:"role"`
	Namespaces KubernetesSDNamespaces `yaml:"namespaces"`
}

// KubernetesSDNamespaces restricts discovery to namespaces.
type KubernetesSDNamespaces struct {
	Names []string `yaml:"names"`
}

// Kubernetes' meta labels, as Prometheus' discovery sets them on Pod targets.
const (
	metaNamespace  = "__meta_kubernetes_namespace"
	metaPodName    = "__meta_kubernetes_pod_name"
	metaPodPhase   = "__meta_kubernetes_pod_phase"
	metaPodLabel   = "__meta_kubernetes_pod_label_"
	metaPortNumber = "__meta_kubernetes_pod_container_port_number"
)

// invalidLabelChars are replaced by _ in the names of Kubernetes labels as meta labels.
var invalidLabelChars = regexp.MustCompile(`[^a-zA-Z0-9_]`)

// JobName is the job of the plain scrape_config: one per workload and credential.
func (s *Scrape) JobName() string {
	return s.Namespace + "/" + s.Workload.Name + "/" + string(s.Auth)
}

// ScrapeConfig is the plain scrape_config: the same port, path, server name, CA and credentials
// as the monitors and their scrape class, from files (CAFile, TokenFile, ClientCertFile).
func (s *Scrape) ScrapeConfig(targets Targets) *ScrapeConfig {
	hc := config.DefaultHTTPClientConfig
	hc.FollowRedirects = followRedirects
	hc.TLSConfig = config.TLSConfig{CAFile: s.CAFile(), ServerName: s.ServerName}
	switch s.Auth {
	case AuthToken:
		hc.Authorization = &config.Authorization{Type: "Bearer", CredentialsFile: s.TokenFile()}
	case AuthCert:
		hc.TLSConfig.CertFile, hc.TLSConfig.KeyFile = s.ClientCertFile(), s.ClientKeyFile()
	}
	sc := &ScrapeConfig{JobName: s.JobName(), Scheme: "https", MetricsPath: s.Path, HTTPClientConfig: hc}
	port := strconv.Itoa(int(s.Port.Number))
	if targets == TargetsStatic {
		for _, t := range s.Targets {
			sc.StaticConfigs = append(sc.StaticConfigs, &targetgroup.Group{
				Targets: []model.LabelSet{{model.AddressLabel: model.LabelValue(net.JoinHostPort(t.IP, port))}},
				Labels:  model.LabelSet{"namespace": model.LabelValue(s.Namespace), "pod": model.LabelValue(t.Pod)},
			})
		}
		return sc
	}
	sc.KubernetesSDConfigs = []KubernetesSDConfig{{Role: "pod", Namespaces: KubernetesSDNamespaces{Names: []string{s.Namespace}}}}
	keep := func(label, value string) *relabel.Config {
		return &relabel.Config{SourceLabels: model.LabelNames{model.LabelName(label)}, Regex: relabel.MustNewRegexp(regexp.QuoteMeta(value)), Action: relabel.Keep}
	}
	keys := make([]string, 0, len(s.PodLabels))
	for k := range s.PodLabels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		sc.RelabelConfigs = append(sc.RelabelConfigs, keep(metaPodLabel+invalidLabelChars.ReplaceAllString(k, "_"), s.PodLabels[k]))
	}
	sc.RelabelConfigs = append(sc.RelabelConfigs,
		keep(metaPortNumber, port),
		&relabel.Config{SourceLabels: model.LabelNames{metaPodPhase}, Regex: relabel.MustNewRegexp("Pending|Succeeded|Failed"), Action: relabel.Drop},
		&relabel.Config{SourceLabels: model.LabelNames{metaNamespace}, TargetLabel: "namespace", Regex: relabel.DefaultRelabelConfig.Regex, Action: relabel.Replace},
		&relabel.Config{SourceLabels: model.LabelNames{metaPodName}, TargetLabel: "pod", Regex: relabel.DefaultRelabelConfig.Regex, Action: relabel.Replace},
	)
	return sc
}
