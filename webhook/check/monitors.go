package check

import (
	"fmt"
	"slices"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// scrape is what a ServiceMonitor or PodMonitor endpoint says of how it scrapes.
type scrape struct {
	scheme      string
	ca          bool
	serverName  bool
	insecure    bool
	credentials bool
	// secret: the endpoint sends a token, a password or OAuth2's, which a redirect would take
	// elsewhere (a client certificate's key is never sent).
	secret bool
	// followsRedirects: followRedirects is not false (Prometheus' default follows).
	followsRedirects bool
	// scrapeClass may carry credentials the monitor does not show (prometheus-operator takes a
	// credentials file only from one), so without it only scheme and CA are judged, and a token
	// is taken to be sent.
	scrapeClass bool
}

// problems are what keeps the scrape from working through the proxy, or hands what it sends to
// someone else.
func (s scrape) problems(i int, list string) []string {
	var out []string
	if s.scheme != "https" {
		scheme := s.scheme
		if scheme == "" {
			scheme = "http, the default"
		}
		out = append(out, fmt.Sprintf("%s[%d].scheme is %s, not https", list, i, scheme))
	}
	if !s.ca {
		out = append(out, fmt.Sprintf("%s[%d].tlsConfig has no ca", list, i))
	}
	if !s.serverName {
		out = append(out, fmt.Sprintf("%s[%d].tlsConfig has no serverName (the certificate names the Service, not the Pod's address)", list, i))
	}
	if s.insecure {
		out = append(out, fmt.Sprintf("%s[%d].tlsConfig.insecureSkipVerify is true: Prometheus sends its credentials to whoever answers", list, i))
	}
	if !s.credentials && !s.scrapeClass {
		out = append(out, fmt.Sprintf("%s[%d] has no credentials (authorization, or a tlsConfig cert and key)", list, i))
	}
	if s.followsRedirects && (s.secret || s.scrapeClass) {
		out = append(out, fmt.Sprintf("%s[%d].followRedirects is not false: a redirect, to plain http too, takes its token elsewhere", list, i))
	}
	return out
}

func safeTLS(t *monitoringv1.SafeTLSConfig, s *scrape) (cert bool) {
	if t == nil {
		return false
	}
	s.ca = t.CA.Secret != nil || t.CA.ConfigMap != nil
	s.serverName = t.ServerName != nil && *t.ServerName != ""
	s.insecure = t.InsecureSkipVerify != nil && *t.InsecureSkipVerify
	return (t.Cert.Secret != nil || t.Cert.ConfigMap != nil) && t.KeySecret != nil
}

func serviceMonitorScrape(ep *monitoringv1.Endpoint, class *string) scrape {
	s := scrape{scheme: ep.Scheme.String(), scrapeClass: class != nil && *class != "", followsRedirects: ep.FollowRedirects == nil || *ep.FollowRedirects}
	var cert bool
	if t := ep.TLSConfig; t != nil {
		cert = safeTLS(&t.SafeTLSConfig, &s)
		s.ca = s.ca || t.CAFile != ""
		cert = cert || t.CertFile != "" && t.KeyFile != ""
	}
	s.secret = ep.Authorization != nil || ep.BearerTokenSecret != nil || ep.BearerTokenFile != "" || ep.OAuth2 != nil || ep.BasicAuth != nil
	s.credentials = cert || ep.Authorization != nil || ep.BearerTokenSecret != nil || ep.BearerTokenFile != "" || ep.OAuth2 != nil
	return s
}

func podMonitorScrape(ep *monitoringv1.PodMetricsEndpoint, class *string) scrape {
	s := scrape{scheme: ep.Scheme.String(), scrapeClass: class != nil && *class != "", followsRedirects: ep.FollowRedirects == nil || *ep.FollowRedirects}
	cert := safeTLS(ep.TLSConfig, &s)
	s.secret = ep.Authorization != nil || ep.BearerTokenSecret != nil || ep.OAuth2 != nil || ep.BasicAuth != nil
	s.credentials = cert || ep.Authorization != nil || ep.BearerTokenSecret != nil || ep.OAuth2 != nil
	return s
}

// toProxy reports whether a port (by name or number) reaches the proxy: the port it listens on,
// or in redirect mode the app's port, which is redirected to it.
func toProxy(p *inject.Policy, name string, number int32) bool {
	redirect := p.Mode == inject.PortModeRedirect
	if name != "" {
		return name == p.Target.ProxyPortName || redirect && name == p.Target.Name
	}
	return number == p.ProxyPort || redirect && number == p.Target.Number
}

func intOrString(v intstr.IntOrString) (string, int32) {
	if v.Type == intstr.String {
		return v.StrVal, 0
	}
	return "", v.IntVal
}

// ruleMonitors: every ServiceMonitor endpoint (through a Service that selects the workload's
// Pods and leads to the proxy) and PodMonitor endpoint that scrapes the protected port uses
// https, a CA, and credentials.
func ruleMonitors(a *analysis, x *assessed) {
	if !x.protected() {
		return
	}
	p := x.policy
	ns, podLabels := x.ref.Namespace, x.subject.Labels
	fix := command("rbac-proxy-injector", "scrape-config", strings.ToLower(x.ref.Kind)+"/"+x.ref.Name, "-n", ns)
	report := func(kind string, m *metav1.ObjectMeta, problems []string) {
		if len(problems) == 0 {
			return
		}
		a.find(CodePlainHTTPScrape, ObjectRef{Kind: kind, Namespace: m.Namespace, Name: m.Name}, x,
			fmt.Sprintf("%s %s scrapes the proxy of %s %s/%s but %s", kind, m.Name, x.ref.Kind, ns, x.ref.Name, strings.Join(problems, "; ")), fix)
	}
	idx := a.index()
	// A ServiceMonitor's problems, over the Services that select the Pods, in the snapshot's
	// order: each Service and monitor is looked up by what it selects (selectors.go).
	problems := map[int][]string{}
	var monitors []int
	for _, j := range idx.servicesOf(ns, podLabels) {
		svc := &a.snap.Services[j]
		for _, i := range idx.serviceMonitorsOf(a.snap, j) {
			sm := &a.snap.ServiceMonitors[i]
			if _, seen := problems[i]; !seen {
				problems[i] = []string{}
				monitors = append(monitors, i)
			}
			for k := range sm.Spec.Endpoints {
				ep := &sm.Spec.Endpoints[k]
				if !endpointToProxy(p, svc, ep) {
					continue
				}
				for _, pr := range serviceMonitorScrape(ep, sm.Spec.ScrapeClassName).problems(k, "endpoints") {
					if !slices.Contains(problems[i], pr) {
						problems[i] = append(problems[i], pr)
					}
				}
			}
		}
	}
	slices.Sort(monitors)
	for _, i := range monitors {
		report("ServiceMonitor", &a.snap.ServiceMonitors[i].ObjectMeta, problems[i])
	}
	for _, i := range idx.podMonitors.lookup(ns, podLabels) {
		pm := &a.snap.PodMonitors[i]
		var problems []string
		for k := range pm.Spec.PodMetricsEndpoints {
			ep := &pm.Spec.PodMetricsEndpoints[k]
			var hits bool
			switch {
			case ep.Port != nil:
				hits = toProxy(p, *ep.Port, 0)
			case ep.PortNumber != nil:
				hits = toProxy(p, "", *ep.PortNumber)
			case ep.TargetPort != nil:
				name, number := intOrString(*ep.TargetPort)
				hits = toProxy(p, name, number)
			}
			if hits {
				problems = append(problems, podMonitorScrape(ep, pm.Spec.ScrapeClassName).problems(k, "podMetricsEndpoints")...)
			}
		}
		report("PodMonitor", &pm.ObjectMeta, problems)
	}
}

// endpointToProxy reports whether a ServiceMonitor endpoint scrapes, through svc, the proxy.
func endpointToProxy(p *inject.Policy, svc *corev1.Service, ep *monitoringv1.Endpoint) bool {
	if ep.Port == "" && ep.TargetPort != nil {
		name, number := intOrString(*ep.TargetPort)
		return toProxy(p, name, number)
	}
	for _, sp := range svc.Spec.Ports {
		if ep.Port != "" && sp.Name != ep.Port {
			continue
		}
		name, number := intOrString(sp.TargetPort)
		if name == "" && number == 0 {
			number = sp.Port
		}
		if toProxy(p, name, number) {
			return true
		}
	}
	return false
}
