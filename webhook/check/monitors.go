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
		sm := &a.snap.ServiceMonitors[i]
		report("ServiceMonitor", &sm.ObjectMeta, problems[i])
		var past []appPortScrape
		for k := range sm.Spec.Endpoints {
			if ep := &sm.Spec.Endpoints[k]; ep.Port == "" && ep.TargetPort != nil {
				past = append(past, appPort(p, fmt.Sprintf("endpoints[%d]", k), nil, nil, ep.TargetPort, false)...)
			}
		}
		a.reportAppPort(x, "ServiceMonitor", &sm.ObjectMeta, past)
	}
	for _, i := range idx.podMonitors.lookup(ns, podLabels) {
		pm := &a.snap.PodMonitors[i]
		var problems []string
		var past []appPortScrape
		for k := range pm.Spec.PodMetricsEndpoints {
			ep := &pm.Spec.PodMetricsEndpoints[k]
			past = append(past, appPort(p, fmt.Sprintf("podMetricsEndpoints[%d]", k), ep.Port, ep.PortNumber, ep.TargetPort, true)...)
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
		a.reportAppPort(x, "PodMonitor", &pm.ObjectMeta, past)
	}
}

// appPortScrape is a monitor endpoint that, in rename mode, scrapes the app's own port past the
// proxy: why, and the field to set.
type appPortScrape struct{ why, fix string }

// appPort: in rename mode the app still listens on its port number, the proxy took its name; an
// endpoint that scrapes that number (or, of a PodMonitor, names no port: it scrapes every port
// the Pods declare) reaches the app past the proxy, in plain http.
func appPort(p *inject.Policy, at string, port *string, number *int32, target *intstr.IntOrString, podMonitor bool) []appPortScrape {
	if p.Mode != inject.PortModeRename || port != nil && *port != "" {
		return nil
	}
	set := at + ".port to " + p.Target.ProxyPortName
	if !podMonitor {
		set = at + ".targetPort to " + p.Target.ProxyPortName
	}
	if p.Target.ProxyPortName == "" {
		set = fmt.Sprintf("%s.portNumber to %d", at, p.ProxyPort)
		if !podMonitor {
			set = fmt.Sprintf("%s.targetPort to %d", at, p.ProxyPort)
		}
	}
	switch {
	case number != nil:
		if *number == p.Target.Number {
			return []appPortScrape{{fmt.Sprintf("%s.portNumber is %d, the app's", at, *number), set}}
		}
	case target != nil:
		if name, n := intOrString(*target); name == "" && n == p.Target.Number {
			return []appPortScrape{{fmt.Sprintf("%s.targetPort is %d, the app's", at, n), set}}
		}
	case podMonitor:
		return []appPortScrape{{fmt.Sprintf("%s names no port, so it scrapes every port of the Pods, the app's %d too", at, p.Target.Number), set}}
	}
	return nil
}

// reportAppPort reports a monitor's endpoints that scrape the app past the proxy, as
// ServiceTargetsAppPort does a Service's port.
func (a *analysis) reportAppPort(x *assessed, kind string, m *metav1.ObjectMeta, past []appPortScrape) {
	if len(past) == 0 {
		return
	}
	whys := make([]string, len(past))
	for i, s := range past {
		whys[i] = s.why
	}
	a.find(CodeServiceTargetsAppPort, ObjectRef{Kind: kind, Namespace: m.Namespace, Name: m.Name}, x,
		fmt.Sprintf("%s %s scrapes the app of %s %s/%s past the proxy, in plain http: %s (rename mode gave the port's name to the proxy)", kind, m.Name, x.ref.Kind, x.ref.Namespace, x.ref.Name, strings.Join(whys, "; ")),
		"set "+past[0].fix)
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
