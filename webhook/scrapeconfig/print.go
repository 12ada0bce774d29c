package scrapeconfig

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"go.yaml.in/yaml/v2"
	corev1 "k8s.io/api/core/v1"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// Output is what is printed.
type Output string

const (
	OutputServiceMonitor Output = "servicemonitor"
	OutputPodMonitor     Output = "podmonitor"
	OutputPrometheus     Output = "prometheus"
)

// Outputs are the values of -o.
func Outputs() []Output { return []Output{OutputServiceMonitor, OutputPodMonitor, OutputPrometheus} }

// DefaultOutput is a ServiceMonitor when a Service it can select leads to the proxy, else a
// PodMonitor.
func (s *Scrape) DefaultOutput() Output {
	if s.Service != nil && len(s.Service.Labels) > 0 {
		return OutputServiceMonitor
	}
	return OutputPodMonitor
}

// Options are the choices of the output beside the Scrape.
type Options struct {
	Output  Output
	Targets Targets
	// PrometheusNamespace is where the Prometheus runs that takes the scrape class (token mode).
	PrometheusNamespace string
}

// Write prints the output YAML, preceded by comments that say what it needs besides itself.
func (s *Scrape) Write(w io.Writer, o Options) error {
	var b bytes.Buffer
	switch o.Output {
	case OutputServiceMonitor, OutputPodMonitor:
		var obj any
		if o.Output == OutputPodMonitor {
			obj = s.PodMonitor()
		} else {
			sm, err := s.ServiceMonitor()
			if err != nil {
				return err
			}
			obj = sm
		}
		b.WriteString(s.describe() + "# In the workload's namespace, where the Secrets it names are.\n")
		if p := s.Prometheus(); p != nil {
			part, err := sigsyaml.Marshal(map[string]any{
				"apiVersion": monitoringv1.SchemeGroupVersion.String(), "kind": monitoringv1.PrometheusesKind,
				"metadata": map[string]string{"namespace": o.PrometheusNamespace}, "spec": p,
			})
			if err != nil {
				return err
			}
			selector, kind := "serviceMonitorSelector and serviceMonitorNamespaceSelector", monitoringv1.ServiceMonitorsKind
			if o.Output == OutputPodMonitor {
				selector, kind = "podMonitorSelector and podMonitorNamespaceSelector", monitoringv1.PodMonitorsKind
			}
			b.WriteString(commentf("# The token is a file, which prometheus-operator reads from a scrape class only: merge this\n# into the Prometheus in namespace %s, whose %s\n# must select this %s too:\n", o.PrometheusNamespace, selector, kind))
			comment(&b, string(part))
		}
		s.needs(&b, false)
		out, err := sigsyaml.Marshal(obj)
		if err != nil {
			return err
		}
		b.Write(out)
	case OutputPrometheus:
		b.WriteString(s.describe() + "# An item of scrape_configs. The files it reads:\n")
		b.WriteString(commentf("#   %s: key %s of Secret %s in namespace %s, the CA of the proxy's serving certificate\n", s.CAFile(), inject.CAKey, s.CASecret, s.Namespace))
		s.needs(&b, true)
		if o.Targets == TargetsStatic {
			b.WriteString(commentf("# The targets are the %d Pods that run the proxy now: print it again when they change.\n", len(s.Targets)))
		}
		out, err := yaml.Marshal([]*ScrapeConfig{s.ScrapeConfig(o.Targets)})
		if err != nil {
			return err
		}
		b.Write(out)
	default:
		return fmt.Errorf("unknown output %q", o.Output)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// describe says in comment lines what is scraped and how.
func (s *Scrape) describe() string {
	how := "a client certificate"
	if s.Auth == AuthToken {
		how = "a ServiceAccount token of audience " + s.Audience
		if s.Audience == "" {
			how = "Prometheus' own ServiceAccount token"
		}
	}
	return commentf("# Scrapes %s in namespace %s through rbac-proxy: https to port %s, path %s,\n# the proxy verified as %s, with %s.\n", s.what(), s.Namespace, s.Port, s.Path, s.ServerName, how)
}

// needs comments on the credentials: where the token or client certificate comes from, and the
// right the proxy asks of its identity.
func (s *Scrape) needs(b *bytes.Buffer, files bool) {
	switch s.Auth {
	case AuthToken:
		if files && s.Audience != "" {
			b.WriteString(commentf("#   %s: a projected ServiceAccount token of audience %s; in a Pod:\n", s.TokenFile(), s.Audience))
			v, _ := sigsyaml.Marshal(map[string]any{"volumes": []corev1.Volume{s.TokenVolume()}, "volumeMounts": []corev1.VolumeMount{s.TokenVolumeMount()}})
			comment(b, string(v))
		} else if files {
			b.WriteString(commentf("#   %s: the Pod's own ServiceAccount token\n", s.TokenFile()))
		}
		b.WriteString("# The ServiceAccount of Prometheus must be allowed what the proxy asks (rbac-proxy-injector check --scraper system:serviceaccount:NS:NAME tells).\n")
	case AuthCert:
		if files {
			b.WriteString(commentf("#   %s, %s: keys %s and %s of Secret %s, the client certificate\n", SecretFile(s.ClientCertSecret, corev1.TLSCertKey), SecretFile(s.ClientCertSecret, corev1.TLSPrivateKeyKey), corev1.TLSCertKey, corev1.TLSPrivateKeyKey, s.ClientCertSecret))
		}
		where := ""
		if !files {
			where = " in namespace " + s.Namespace
		}
		b.WriteString(commentf("# Secret %s%s holds a client certificate from the scrapers' CA (a cert-manager Certificate\n# of the injector's scrapers' Issuer); its common name must be allowed what the proxy asks\n# (rbac-proxy-injector check --scraper NAME tells).\n", s.ClientCertSecret, where))
	}
}

// comment writes text as indented YAML comment lines, each through clean.
func comment(b *bytes.Buffer, text string) {
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		b.WriteString("#   " + clean(line) + "\n")
	}
}
