package scrapeconfig

import (
	"bytes"
	"encoding/json"
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
	// PrometheusNamespace is where the Prometheus runs that takes the scrape class, and where the
	// client certificate's Secret is.
	PrometheusNamespace string
}

// Write prints the output YAML, preceded by comments that say what it needs besides itself.
func (s *Scrape) Write(w io.Writer, o Options) error {
	var b bytes.Buffer
	switch o.Output {
	case OutputServiceMonitor, OutputPodMonitor:
		if err := s.writeMonitor(&b, o); err != nil {
			return err
		}
	case OutputPrometheus:
		b.WriteString(s.describe() + "# An item of scrape_configs. The files it reads:\n")
		b.WriteString(commentf("#   %s: key %s of Secret %s in namespace %s, the CA of the proxy's serving certificate\n", s.CAFile(), inject.CAKey, s.CASecret, s.Namespace))
		s.needs(&b, true, "")
		if o.Targets == TargetsStatic {
			b.WriteString(commentf("# The targets are the IPs of the Pods that run the injector's proxy now (%d). Print this again\n"+
				"# whenever they change (a rollout, a reschedule, a scale): a freed Pod IP goes to another Pod,\n"+
				"# maybe another tenant's, and Prometheus would send it the credentials; the server name\n"+
				"# keeps them only while no one else can get a certificate of that name from the same CA (a\n"+
				"# shared ClusterIssuer: restrict what it signs with cert-manager's approver-policy).\n", len(s.Targets)))
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

// writeMonitor prints the ServiceMonitor or PodMonitor, preceded by the Prometheus part its
// scrape class needs, as a comment.
func (s *Scrape) writeMonitor(b *bytes.Buffer, o Options) error {
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
	b.WriteString(s.describe() + "# In the workload's namespace, where the serving Secret it names is.\n")
	part, err := marshal(map[string]any{
		"apiVersion": monitoringv1.SchemeGroupVersion.String(), "kind": monitoringv1.PrometheusesKind,
		"metadata": map[string]string{"namespace": o.PrometheusNamespace}, "spec": s.Prometheus(),
	})
	if err != nil {
		return err
	}
	selector, kind := "serviceMonitorSelector and serviceMonitorNamespaceSelector", monitoringv1.ServiceMonitorsKind
	if o.Output == OutputPodMonitor {
		selector, kind = "podMonitorSelector and podMonitorNamespaceSelector", monitoringv1.PodMonitorsKind
	}
	why := "# The token is a file, which prometheus-operator reads from a scrape class only: merge this\n"
	if s.Auth == AuthCert {
		why = "# prometheus-operator reads a monitor's Secrets in the monitor's namespace, and the client\n# certificate is issued in Prometheus' (the scrapers' Issuer is namespaced): a scrape class\n# presents it from the Secret the Prometheus mounts. Merge this\n"
	}
	b.WriteString(why + commentf("# into the Prometheus in namespace %s, whose %s\n# must select this %s too:\n", o.PrometheusNamespace, selector, kind))
	comment(b, string(part))
	if s.Auth == AuthToken {
		b.WriteString(s.tokenClassUsers(o.Output))
	}
	s.needs(b, false, o.PrometheusNamespace)
	out, err := marshal(obj)
	if err != nil {
		return err
	}
	_, err = b.Write(out)
	return err
}

// tokenClassUsers says in comment lines who can use the token's scrape class, and how to keep
// that to the admins: prometheus-operator merges a scrape class's authorization into any
// monitor that names it, whatever its scheme and target, so a tenant's monitor naming it gets
// the token sent to its own http endpoint. A client certificate in a scrape class cannot be
// taken that way (TLS shows only its public part).
func (s *Scrape) tokenClassUsers(o Output) string {
	kind := monitoringv1.ServiceMonitorsKind
	if o == OutputPodMonitor {
		kind = monitoringv1.PodMonitorsKind
	}
	return commentf("# Who can use this token: every ServiceMonitor, PodMonitor and ScrapeConfig that this\n"+
		"# Prometheus selects may name scrape class %s, and Prometheus then sends\n"+
		"# the token (of audience %s, which the proxy takes as Prometheus) wherever\n"+
		"# that monitor points, over plain http too. Keep it to admins: let\n"+
		"# serviceMonitorNamespaceSelector, podMonitorNamespaceSelector and\n"+
		"# scrapeConfigNamespaceSelector select only namespaces that tenants cannot\n"+
		"# write (this %s then goes there, with namespaceSelector.matchNames [%s]\n"+
		"# and Secret %s copied there), or scrape with --auth cert, or with the\n"+
		"# plain scrape_config (-o prometheus).\n",
		s.TokenName(), s.Audience, kind, s.Namespace, s.CASecret)
}

// describe says in comment lines what is scraped and how.
func (s *Scrape) describe() string {
	how := "a client certificate"
	if s.Auth == AuthToken {
		how = "a ServiceAccount token of audience " + s.Audience
	}
	return commentf("# Scrapes %s in namespace %s through rbac-proxy: https to port %s, path %s,\n# the proxy verified as %s, with %s.\n", s.what(), s.Namespace, s.Port, s.Path, s.ServerName, how)
}

// needs comments on the credentials: where the token or client certificate comes from (the
// client certificate's Secret in namespace, when known), and the right the proxy asks of its
// identity.
func (s *Scrape) needs(b *bytes.Buffer, files bool, namespace string) {
	switch s.Auth {
	case AuthToken:
		if files {
			b.WriteString(commentf("#   %s: a projected ServiceAccount token of audience %s; in a Pod:\n", s.TokenFile(), s.Audience))
			v, _ := sigsyaml.Marshal(map[string]any{"volumes": []corev1.Volume{s.TokenVolume()}, "volumeMounts": []corev1.VolumeMount{s.TokenVolumeMount()}})
			comment(b, string(v))
		}
		b.WriteString("# The ServiceAccount of Prometheus must be allowed what the proxy asks (rbac-proxy-injector check --scraper system:serviceaccount:NS:NAME tells).\n")
	case AuthCert:
		if files {
			b.WriteString(commentf("#   %s, %s: keys %s and %s of Secret %s, the client certificate\n", s.ClientCertFile(), s.ClientKeyFile(), corev1.TLSCertKey, corev1.TLSPrivateKeyKey, s.ClientCertSecret))
		}
		where := ""
		if namespace != "" {
			where = " in namespace " + namespace
		}
		b.WriteString(commentf("# Secret %s%s holds a client certificate from the scrapers' CA (a cert-manager Certificate\n# of the injector's scrapers' Issuer); its common name must be allowed what the proxy asks\n# (rbac-proxy-injector check --scraper NAME tells).\n", s.ClientCertSecret, where))
	}
}

// marshal prints obj as YAML without the empty objects that the typed API's zero structs leave
// (`cert: {}`, `namespaceSelector: {}`): an empty object there means what no field means, and
// the tests read the output back into the same typed object.
func marshal(obj any) ([]byte, error) {
	j, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	d := json.NewDecoder(bytes.NewReader(j))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return sigsyaml.Marshal(dropEmptyObjects(v))
}

// dropEmptyObjects removes the keys whose value is an object that is empty, or becomes empty
// once its own empty objects are removed.
func dropEmptyObjects(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			if m, ok := dropEmptyObjects(e).(map[string]any); ok && len(m) == 0 {
				delete(t, k)
			}
		}
	case []any:
		for _, e := range t {
			dropEmptyObjects(e)
		}
	}
	return v
}

// commentIndent starts each line of YAML printed in a comment.
const commentIndent = "#   "

// comment writes text as indented YAML comment lines, each through clean.
func comment(b *bytes.Buffer, text string) {
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		b.WriteString(commentIndent + clean(line) + "\n")
	}
}

// PrometheusPartIn reads back, from what Write printed for a monitor, the Prometheus part in its
// comments, as an operator copies it: the commented YAML from its apiVersion on; empty when
// there is none.
func PrometheusPartIn(printed string) string {
	i := strings.Index(printed, commentIndent+"apiVersion: ")
	if i < 0 {
		return ""
	}
	var lines []string
	for _, line := range strings.Split(printed[i:], "\n") {
		rest, ok := strings.CutPrefix(line, commentIndent)
		if !ok {
			break
		}
		lines = append(lines, rest+"\n")
	}
	return strings.Join(lines, "")
}
