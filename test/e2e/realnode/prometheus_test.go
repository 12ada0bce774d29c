package realnode

import (
	"fmt"
	"net"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

// Where the Prometheus Pods find their files, and where they answer.
const (
	monitoringNS     = "monitoring"
	prometheusPort   = 9090
	configDir        = "/etc/prometheus/config"
	servingCADir     = "/etc/prometheus/serving-ca"
	clientCertDir    = "/etc/prometheus/client"
	tokenDir         = "/var/run/secrets/rbac-proxy"
	servingCAConfig  = "rbac-proxy-serving-ca"
	clientCertSecret = "prometheus-scraper-tls"
	// clientName is the client certificate's CommonName: the user the proxy authorizes.
	clientName = "prometheus-scraper"
	// scrapeInterval is short so a rotation window holds many scrapes.
	scrapeInterval = "1s"
	// prometheusUID is the image's user (nobody), as Debian's package runs it.
	prometheusUID = 65534
)

// credential is how a Prometheus job authenticates to the proxies.
type credential string

const (
	credToken credential = "projected ServiceAccount token"
	credCert  credential = "client certificate"
	credNone  credential = "no credentials"
)

// job is one scrape job and what every target of it must come to.
type job struct {
	name string
	cred credential
	// wantError is the lastError every target must show; empty: up = 1.
	wantError string
}

// scraper is one Prometheus Pod, running as its own ServiceAccount.
type scraper struct {
	name string
	// rights: its ServiceAccount may get /metrics.
	rights bool
	jobs   []job
}

// scrapers are the Prometheus Pods: one allowed in by token and by certificate, one whose
// ServiceAccount has no rights (403) and that also tries without any credentials (401).
var scrapers = []scraper{
	{name: "prometheus", rights: true, jobs: []job{
		{name: "token", cred: credToken},
		{name: "cert", cred: credCert},
	}},
	{name: "prometheus-norights", jobs: []job{
		{name: "norights", cred: credToken, wantError: "403 Forbidden"},
		{name: "anonymous", cred: credNone, wantError: "401 Unauthorized"},
	}},
}

// target is one exporter Pod as Prometheus scrapes it.
type target struct {
	workload workload
	pod      string
	ip       string
}

func (t target) address() string { return net.JoinHostPort(t.ip, strconv.Itoa(exporterPort)) }

// The subset of Prometheus' configuration file the story writes.
type promConfig struct {
	Global        promGlobal     `json:"global"`
	ScrapeConfigs []scrapeConfig `json:"scrape_configs"`
}

type promGlobal struct {
	ScrapeInterval string `json:"scrape_interval"`
	ScrapeTimeout  string `json:"scrape_timeout"`
}

type scrapeConfig struct {
	JobName       string             `json:"job_name"`
	Scheme        string             `json:"scheme"`
	Authorization *promAuthorization `json:"authorization,omitempty"`
	TLSConfig     promTLS            `json:"tls_config"`
	StaticConfigs []staticConfig     `json:"static_configs"`
}

type promAuthorization struct {
	CredentialsFile string `json:"credentials_file"`
}

type promTLS struct {
	CAFile     string `json:"ca_file"`
	ServerName string `json:"server_name"`
	CertFile   string `json:"cert_file,omitempty"`
	KeyFile    string `json:"key_file,omitempty"`
}

type staticConfig struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// config renders the scraper's prometheus.yml: every job scrapes every exporter Pod's IP on
// the exporter's own port, over HTTPS, verifying the proxy's certificate with the serving CA.
// The IPs are written in (static_configs): Debian builds Prometheus without kubernetes_sd_configs.
func (s scraper) config(exporterNS string, targets []target) ([]byte, error) {
	cfg := promConfig{Global: promGlobal{ScrapeInterval: scrapeInterval, ScrapeTimeout: scrapeInterval}}
	for _, j := range s.jobs {
		sc := scrapeConfig{
			JobName: j.name,
			Scheme:  "https",
			TLSConfig: promTLS{
				CAFile:     servingCADir + "/ca.crt",
				ServerName: metricsService + "." + exporterNS + ".svc",
			},
		}
		switch j.cred {
		case credToken:
			sc.Authorization = &promAuthorization{CredentialsFile: tokenDir + "/token"}
		case credCert:
			sc.TLSConfig.CertFile, sc.TLSConfig.KeyFile = clientCertDir+"/tls.crt", clientCertDir+"/tls.key"
		}
		for _, t := range targets {
			sc.StaticConfigs = append(sc.StaticConfigs, staticConfig{
				Targets: []string{t.address()},
				Labels:  map[string]string{"workload": t.workload.name, "mode": string(t.workload.mode), "pod": t.pod},
			})
		}
		cfg.ScrapeConfigs = append(cfg.ScrapeConfigs, sc)
	}
	return yaml.Marshal(cfg)
}

// usesCert reports whether a job of the scraper presents the client certificate.
func (s scraper) usesCert() bool {
	for _, j := range s.jobs {
		if j.cred == credCert {
			return true
		}
	}
	return false
}

// objects are the scraper's ServiceAccount, configuration and Pod: Debian's Prometheus with a
// projected token for the exporters' proxies (audience rbac-proxy:<exporter namespace>, as the
// injector's local verification expects), the serving CA and, when a job uses it, the client
// certificate's Secret.
func (s scraper) objects(exporterNS, audience string, conf []byte) (*corev1.ServiceAccount, *corev1.ConfigMap, *corev1.Pod) {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: monitoringNS, Name: s.name}}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: monitoringNS, Name: s.name + "-config"},
		Data:       map[string]string{"prometheus.yml": string(conf)},
	}
	volumes := []corev1.Volume{
		{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: cm.Name}}}},
		{Name: "serving-ca", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: servingCAConfig}}}},
		{Name: "rbac-proxy-token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
				Audience: audience, ExpirationSeconds: ptr.To[int64](3600), Path: "token"}}}}}},
		{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}
	mounts := []corev1.VolumeMount{
		{Name: "config", MountPath: configDir, ReadOnly: true},
		{Name: "serving-ca", MountPath: servingCADir, ReadOnly: true},
		{Name: "rbac-proxy-token", MountPath: tokenDir, ReadOnly: true},
		{Name: "data", MountPath: "/prometheus"},
	}
	if s.usesCert() {
		volumes = append(volumes, corev1.Volume{Name: "client", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: clientCertSecret}}})
		mounts = append(mounts, corev1.VolumeMount{Name: "client", MountPath: clientCertDir, ReadOnly: true})
	}
	pod := prometheusPod(s.name, s.name, volumes, mounts)
	return sa, cm, pod
}

// prometheusPod is Debian's Prometheus in a Pod of the monitoring namespace, run as
// serviceAccount, with prometheus.yml in configDir and its data in /prometheus, both among
// mounts; Ready when it answers /-/ready.
func prometheusPod(name, serviceAccount string, volumes []corev1.Volume, mounts []corev1.VolumeMount) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: monitoringNS, Name: name, Labels: map[string]string{nameLabel: name}},
		Spec: corev1.PodSpec{
			ServiceAccountName:            serviceAccount,
			TerminationGracePeriodSeconds: ptr.To[int64](5),
			Volumes:                       volumes,
			Containers: []corev1.Container{{
				Name:            "prometheus",
				Image:           images.prometheus,
				ImagePullPolicy: corev1.PullNever,
				Args: []string{
					"--config.file=" + configDir + "/prometheus.yml",
					"--storage.tsdb.path=/prometheus",
					fmt.Sprintf("--web.listen-address=:%d", prometheusPort),
				},
				Ports:                    []corev1.ContainerPort{{Name: "web", ContainerPort: prometheusPort, Protocol: corev1.ProtocolTCP}},
				VolumeMounts:             mounts,
				TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
				ReadinessProbe: &corev1.Probe{
					ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/-/ready", Port: intstr.FromInt32(prometheusPort)}},
					PeriodSeconds: 1,
				},
				SecurityContext: &corev1.SecurityContext{
					RunAsNonRoot:             ptr.To(true),
					RunAsUser:                ptr.To[int64](prometheusUID),
					AllowPrivilegeEscalation: ptr.To(false),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
		},
	}
}
