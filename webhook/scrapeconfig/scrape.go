package scrapeconfig

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/rbac-proxy/rbac-proxy/webhook"
	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// Auth is how Prometheus authenticates to the proxy.
type Auth string

const (
	// AuthToken: a ServiceAccount token, projected with the audience the proxy requires.
	AuthToken Auth = "token"
	// AuthCert: a client certificate from the scrapers' CA, which the proxy trusts.
	AuthCert Auth = "cert"
)

// Auths are the values of --auth.
func Auths() []Auth { return []Auth{AuthToken, AuthCert} }

// Scrape is how Prometheus scrapes one protected workload: every output is derived from it.
type Scrape struct {
	Namespace string
	Workload  inject.Workload
	// PodLabels are the labels of the workload's Pod template, which each of its Pods carries.
	PodLabels map[string]string
	// Port is the Pod's port Prometheus connects to: the proxy's, or in redirect mode the app's,
	// whose connections go to the proxy.
	Port PodPort
	// Service selects the Pods with a port that leads to Port; nil when none does.
	Service *ServicePort
	Path    string
	// ServerName is the serving certificate's name Prometheus verifies.
	ServerName string
	// CASecret is the Secret whose ca.crt verifies the proxy's serving certificate.
	CASecret string
	Auth     Auth
	// Audience is the token's audience (token mode): the proxy's own, never the API server's.
	Audience string
	// ClientCertSecret holds the client certificate's tls.crt and tls.key (cert mode).
	ClientCertSecret string
	// Targets are the workload's Pods that run the proxy and have an IP, by name.
	Targets []Target
}

// PodPort is a port of the Pod; Name is empty when the port has none.
type PodPort struct {
	Name   string
	Number int32
}

// ServicePort is a Service's port that leads to the scraped Pod port.
type ServicePort struct {
	Service string
	// Labels are the Service's own labels, which a ServiceMonitor selects it by.
	Labels map[string]string
	// Port is the port's name, empty when it has none.
	Port string
}

// Target is one Pod as a static target.
type Target struct {
	Pod string
	IP  string
}

// Input is what a Scrape is described from: the workload as stored, what the webhook does with
// its Pods, and the objects around it.
type Input struct {
	Workload  *webhook.StoredWorkload
	Namespace string
	// Policy is the webhook's for the workload's Pod template.
	Policy *inject.Policy
	// Services are the namespace's Services; those selecting the workload's Pods count.
	Services []corev1.Service
	// DNSNames are the serving certificate's names; NamesFrom names the object they are read
	// from ("Certificate NS/NAME", "Secret NS/NAME"), for errors about them.
	DNSNames  []string
	NamesFrom string
	// Pods are the workload's Pods that run the injector's proxy (inject.CheckInjectedProxy).
	Pods []corev1.Pod
	Auth Auth
	// ClientCertSecret is the Secret of the client certificate, for AuthCert.
	ClientCertSecret string
}

// Describe derives the Scrape from in.
func Describe(in *Input) (*Scrape, error) {
	p, w := in.Policy, in.Workload
	s := &Scrape{
		Namespace: in.Namespace,
		Workload:  w.Workload,
		PodLabels: w.Template.Labels,
		Port:      PodPort{Name: p.Target.ProxyPortName, Number: p.ProxyPort},
		CASecret:  p.TLS.SecretName,
		Auth:      in.Auth,
	}
	what := what(w.Workload)
	// Redirect mode leaves the app its port and sends the connections to it to the proxy: the
	// port a Service or monitor of the app already names, when an app container declares it.
	ports := []PodPort{s.Port}
	if p.Mode == inject.PortModeRedirect && p.Target.Container != "" {
		s.Port = PodPort{Name: p.Target.Name, Number: p.Target.Number}
		ports = append([]PodPort{s.Port}, ports...)
	}
	if len(s.PodLabels) == 0 {
		return nil, fmt.Errorf("the Pod template of %s has no labels to select its Pods by", what)
	}
	var err error
	if s.Path, err = p.ScrapePath(); err != nil {
		return nil, err
	}
	s.Service = selectingService(in.Services, s.PodLabels, ports)
	svc := ""
	if s.Service != nil {
		svc = s.Service.Service
	}
	if s.ServerName = serverName(in.DNSNames, svc, in.Namespace); s.ServerName == "" {
		return nil, fmt.Errorf("the serving certificate of %s (Secret %s) has no DNS name for Prometheus to verify", what, p.TLS.SecretName)
	}
	// The names are the tenant's (its Certificate, or any SAN its own Secret's certificate
	// carries, newlines included), and the server name is printed into YAML and comments.
	if msgs := validation.IsDNS1123Subdomain(s.ServerName); len(msgs) > 0 {
		return nil, fmt.Errorf("the serving certificate of %s (%s) names %q, which is no DNS name Prometheus can verify (not a DNS-1123 subdomain: %s)", what, in.NamesFrom, s.ServerName, strings.Join(msgs, "; "))
	}
	switch in.Auth {
	case AuthToken:
		if s.Audience, err = tokenAudience(p, in.Namespace, what); err != nil {
			return nil, err
		}
	case AuthCert:
		if p.ClientCA == nil {
			return nil, fmt.Errorf("the proxy of %s trusts no client certificate (%s is not set): scrape it with a token, or set %s: %s", what, inject.AnnotationClientCA, inject.AnnotationClientCA, inject.ClientCAScrapers)
		}
		s.ClientCertSecret = in.ClientCertSecret
	default:
		return nil, fmt.Errorf("unknown authentication %q", in.Auth)
	}
	s.Targets = targets(in.Pods)
	return s, nil
}

// selectingService finds, by name, the first Service whose selector matches the Pods' labels
// and with a TCP port that leads to one of ports; one with labels (a ServiceMonitor selects it
// by them) before one without.
func selectingService(services []corev1.Service, podLabels map[string]string, ports []PodPort) *ServicePort {
	var found []ServicePort
	for _, svc := range services {
		if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(podLabels)) {
			continue
		}
		for _, sp := range svc.Spec.Ports {
			if sp.Protocol != "" && sp.Protocol != corev1.ProtocolTCP {
				continue
			}
			if slices.ContainsFunc(ports, func(p PodPort) bool { return leadsTo(sp, p) }) {
				found = append(found, ServicePort{Service: svc.Name, Labels: svc.Labels, Port: sp.Name})
				break
			}
		}
	}
	sort.SliceStable(found, func(i, j int) bool {
		if (len(found[i].Labels) > 0) != (len(found[j].Labels) > 0) {
			return len(found[i].Labels) > 0
		}
		return found[i].Service < found[j].Service
	})
	if len(found) == 0 {
		return nil
	}
	return &found[0]
}

// leadsTo reports whether the Service port reaches the Pod port: by name, by number, or, with
// no targetPort, by its own number.
func leadsTo(sp corev1.ServicePort, p PodPort) bool {
	switch t := sp.TargetPort; {
	case t.Type == intstr.String && t.StrVal != "":
		return p.Name != "" && t.StrVal == p.Name
	case t.Type == intstr.Int && t.IntVal != 0:
		return t.IntVal == p.Number
	}
	return sp.Port == p.Number
}

// serverName is the serving certificate's name a client of the Service uses, <svc>.<ns>.svc;
// else the first name in the namespace, <name>.<ns>.svc; else the first name that is no
// wildcard.
func serverName(names []string, service, namespace string) string {
	if service != "" && slices.Contains(names, service+"."+namespace+".svc") {
		return service + "." + namespace + ".svc"
	}
	for _, n := range names {
		if strings.HasSuffix(n, "."+namespace+".svc") {
			return n
		}
	}
	for _, n := range names {
		if !strings.HasPrefix(n, "*.") {
			return n
		}
	}
	return ""
}

// targets are the Pods (those that run the injector's proxy) that have an IP, run, and are not
// going away.
func targets(pods []corev1.Pod) []Target {
	var out []Target
	for _, p := range pods {
		if p.Status.PodIP == "" || p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
			continue
		}
		out = append(out, Target{Pod: p.Name, IP: p.Status.PodIP})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pod < out[j].Pod })
	return out
}
