package scrapeconfig

import (
	"fmt"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// followRedirects is false on every endpoint printed: Prometheus follows redirects by default,
// with the same Authorization header, and a 302 from the exporter behind the proxy to another
// port of its own IP, over plain http, would hand it the token in clear.
const followRedirects = false

// tokenExpirationSeconds is the projected token's lifetime; the kubelet renews it at 80%.
const tokenExpirationSeconds = 3600

func (s *Scrape) what() string { return what(s.Workload) }

// what names a workload as kubectl does: kind/name.
func what(w inject.Workload) string { return strings.ToLower(w.Kind) + "/" + w.Name }

func (s *Scrape) objectMeta() metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: s.Workload.Name, Namespace: s.Namespace}
}

// ServiceMonitor scrapes the workload through the Service that leads to its proxy. It lives in
// the workload's namespace, where the serving Secret is; its credentials come from the scrape
// class.
func (s *Scrape) ServiceMonitor() (*monitoringv1.ServiceMonitor, error) {
	switch {
	case s.Service == nil:
		return nil, fmt.Errorf("no Service in namespace %s selects the Pods of %s with a port that leads to port %s: a PodMonitor scrapes them", s.Namespace, s.what(), s.Port)
	case len(s.Service.Labels) == 0:
		return nil, fmt.Errorf("Service %s/%s has no labels for a ServiceMonitor to select it by: label it, or scrape with a PodMonitor", s.Namespace, s.Service.Service)
	}
	ep := monitoringv1.Endpoint{Path: s.Path, Scheme: ptr.To(monitoringv1.SchemeHTTPS)}
	ep.FollowRedirects = ptr.To(followRedirects)
	if s.Service.Port != "" {
		ep.Port = s.Service.Port
	} else {
		ep.TargetPort = ptr.To(s.Port.intOrString())
	}
	ep.TLSConfig = s.monitorTLS()
	return &monitoringv1.ServiceMonitor{
		TypeMeta:   metav1.TypeMeta{APIVersion: monitoringv1.SchemeGroupVersion.String(), Kind: monitoringv1.ServiceMonitorsKind},
		ObjectMeta: s.objectMeta(),
		Spec: monitoringv1.ServiceMonitorSpec{
			Selector:        metav1.LabelSelector{MatchLabels: s.Service.Labels},
			Endpoints:       []monitoringv1.Endpoint{ep},
			ScrapeClassName: s.scrapeClass(),
		},
	}, nil
}

// PodMonitor scrapes the workload's Pods on the port that leads to the proxy.
func (s *Scrape) PodMonitor() *monitoringv1.PodMonitor {
	ep := monitoringv1.PodMetricsEndpoint{Path: s.Path, Scheme: ptr.To(monitoringv1.SchemeHTTPS)}
	ep.FollowRedirects = ptr.To(followRedirects)
	if s.Port.Name != "" {
		ep.Port = ptr.To(s.Port.Name)
	} else {
		ep.PortNumber = ptr.To(s.Port.Number)
	}
	ep.TLSConfig = &s.monitorTLS().SafeTLSConfig
	return &monitoringv1.PodMonitor{
		TypeMeta:   metav1.TypeMeta{APIVersion: monitoringv1.SchemeGroupVersion.String(), Kind: monitoringv1.PodMonitorsKind},
		ObjectMeta: s.objectMeta(),
		Spec: monitoringv1.PodMonitorSpec{
			Selector:            metav1.LabelSelector{MatchLabels: s.PodLabels},
			PodMetricsEndpoints: []monitoringv1.PodMetricsEndpoint{ep},
			ScrapeClassName:     s.scrapeClass(),
		},
	}
}

// monitorTLS verifies the proxy with the serving Secret's CA, a Secret of the monitor's
// namespace. It names no client certificate: prometheus-operator resolves a monitor's Secrets in
// the monitor's namespace, and the certificate is issued where the scrapers' namespaced Issuer
// is, Prometheus' namespace; the scrape class gives its files instead, which prometheus-operator
// merges into a tlsConfig with neither cert nor keySecret.
func (s *Scrape) monitorTLS() *monitoringv1.TLSConfig {
	return &monitoringv1.TLSConfig{SafeTLSConfig: monitoringv1.SafeTLSConfig{
		CA:         monitoringv1.SecretOrConfigMap{Secret: secretKey(s.CASecret, inject.CAKey)},
		ServerName: ptr.To(s.ServerName),
	}}
}

func secretKey(name, key string) *corev1.SecretKeySelector {
	return &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: key}
}

// scrapeClass names the Prometheus' scrape class that carries the credentials: a monitor's own
// authorization takes a Secret only, and a projected token is a file; its own client
// certificate would have to be a Secret of its namespace.
func (s *Scrape) scrapeClass() *string { return ptr.To(s.ScrapeClassName()) }

// PrometheusPart is what a prometheus-operator Prometheus needs, to merge into its spec: the
// scrape class with the credentials' files and what puts them there, the projected token (for an
// audience of the proxy's own) or the client certificate's Secret. Its keys are the Prometheus
// spec's.
type PrometheusPart struct {
	ScrapeClasses []monitoringv1.ScrapeClass `json:"scrapeClasses"`
	// Secrets are mounted at SecretsDir/<name> by prometheus-operator.
	Secrets      []string             `json:"secrets,omitempty"`
	Volumes      []corev1.Volume      `json:"volumes,omitempty"`
	VolumeMounts []corev1.VolumeMount `json:"volumeMounts,omitempty"`
}

// Prometheus is the PrometheusPart of the Scrape's credentials.
func (s *Scrape) Prometheus() *PrometheusPart {
	class := monitoringv1.ScrapeClass{Name: s.ScrapeClassName()}
	p := &PrometheusPart{}
	switch s.Auth {
	case AuthCert:
		class.TLSConfig = &monitoringv1.TLSConfig{TLSFilesConfig: monitoringv1.TLSFilesConfig{CertFile: s.ClientCertFile(), KeyFile: s.ClientKeyFile()}}
		p.Secrets = []string{s.ClientCertSecret}
	case AuthToken:
		class.Authorization = &monitoringv1.Authorization{
			SafeAuthorization: monitoringv1.SafeAuthorization{Type: "Bearer"},
			CredentialsFile:   s.TokenFile(),
		}
		p.Volumes = []corev1.Volume{s.TokenVolume()}
		p.VolumeMounts = []corev1.VolumeMount{s.TokenVolumeMount()}
	}
	p.ScrapeClasses = []monitoringv1.ScrapeClass{class}
	return p
}

// TokenVolume is the projected ServiceAccount token of the Scrape's audience, for a Prometheus
// Pod (or a Prometheus CR's spec.volumes).
func (s *Scrape) TokenVolume() corev1.Volume {
	return corev1.Volume{Name: s.TokenName(), VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
			Audience: s.Audience, ExpirationSeconds: ptr.To[int64](tokenExpirationSeconds), Path: "token",
		}}},
	}}}
}

// TokenVolumeMount mounts TokenVolume where TokenFile is.
func (s *Scrape) TokenVolumeMount() corev1.VolumeMount {
	return corev1.VolumeMount{Name: s.TokenName(), MountPath: TokensDir + "/" + s.TokenName(), ReadOnly: true}
}

func (p PodPort) intOrString() intstr.IntOrString {
	if p.Name != "" {
		return intstr.FromString(p.Name)
	}
	return intstr.FromInt32(p.Number)
}

// String names the port as a Pod spec does: name (number), or the number alone.
func (p PodPort) String() string {
	if p.Name != "" {
		return fmt.Sprintf("%s (%d)", p.Name, p.Number)
	}
	return fmt.Sprint(p.Number)
}
