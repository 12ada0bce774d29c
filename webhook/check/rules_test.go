package check

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// caPEM is a fresh self-signed CA certificate.
func caPEM(t *testing.T, cn string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func service(name string, targetPort intstr.IntOrString) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: name, Labels: map[string]string{"app": "dcgm"}},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "dcgm"}, Ports: []corev1.ServicePort{{Name: "metrics", Port: 9400, TargetPort: targetPort}}},
	}
}

// serviceMonitor scrapes the Services labelled app=dcgm on port metrics, as edit says.
func serviceMonitor(edit func(*monitoringv1.Endpoint)) *monitoringv1.ServiceMonitor {
	ep := monitoringv1.Endpoint{Port: "metrics"}
	edit(&ep)
	return &monitoringv1.ServiceMonitor{
		ObjectMeta: metav1.ObjectMeta{Namespace: "monitoring", Name: "dcgm"},
		Spec: monitoringv1.ServiceMonitorSpec{
			Selector:          metav1.LabelSelector{MatchLabels: map[string]string{"app": "dcgm"}},
			NamespaceSelector: monitoringv1.NamespaceSelector{MatchNames: []string{testNS}},
			Endpoints:         []monitoringv1.Endpoint{ep},
		},
	}
}

// scrapedCorrectly is what scrape-config writes: https, the serving CA and the Service's name,
// a token, no redirects followed.
func scrapedCorrectly(ep *monitoringv1.Endpoint) {
	ep.Scheme = ptr.To(monitoringv1.SchemeHTTPS)
	ep.TLSConfig = &monitoringv1.TLSConfig{SafeTLSConfig: monitoringv1.SafeTLSConfig{
		CA:         monitoringv1.SecretOrConfigMap{Secret: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "rbac-proxy-deployment-dcgm"}, Key: "ca.crt"}},
		ServerName: ptr.To("dcgm.gpu.svc"),
	}}
	ep.FollowRedirects = ptr.To(false)
	ep.Authorization = &monitoringv1.SafeAuthorization{Type: "Bearer", Credentials: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "token"}, Key: "token"}}
}

// TestRules: each rule over a healthy injected Deployment (dcgm: rename mode, its Certificate
// Ready) and the one thing changed that the rule is about.
func TestRules(t *testing.T) {
	d := testDefaults(t)
	servingCA, otherCA := caPEM(t, "serving CA"), caPEM(t, "scrapers CA")
	for _, tc := range []struct {
		name string
		// annotations are added to dcgm's template, which opts in.
		annotations map[string]string
		image       string
		extra       func() []any
		edit        func(s *Snapshot)
		findings    []string
		message     string
		fix         string
	}{{
		name:     "healthy",
		findings: []string{},
	}, {
		name:     "proxy from before an upgrade",
		image:    "registry.example/rbac-proxy:v0",
		findings: []string{"StaleProxy Deployment/dcgm"},
		message:  "runs the proxy from registry.example/rbac-proxy:v0, not the injector's registry.example/rbac-proxy:v1",
		fix:      "kubectl rollout restart deployment/dcgm -n gpu",
	}, {
		name: "known exporter in a namespace that never opted in",
		extra: func() []any {
			tmpl := appTemplate(nil, nil)
			tmpl.Spec.Containers[0].Image = "nvcr.io/nvidia/k8s/dcgm-exporter:3.3.5"
			dep, rs := deployment("gpu-exporter", tmpl)
			return []any{dep, rs, podOf(t, d, dep, rs, "a", false, "")}
		},
		findings: []string{"UnprotectedExporter Deployment/gpu-exporter"},
		message:  "Pod gpu-exporter-7d4b9c8f6-a runs dcgm-exporter with no proxy in front",
		fix:      `kubectl label namespace gpu rbac-proxy.io/inject=enabled, or set rbac-proxy.io/inject: "true" in spec.template.metadata.annotations; then kubectl rollout restart deployment/gpu-exporter -n gpu`,
	}, {
		name: "known exporter that opted out",
		extra: func() []any {
			tmpl := appTemplate(nil, map[string]string{inject.AnnotationInject: "false"})
			tmpl.Spec.Containers[0].Image = "quay.io/prometheus/node-exporter:v1.8.0"
			dep, rs := deployment("nodes", tmpl)
			return []any{dep, rs, podOf(t, d, dep, rs, "a", false, "")}
		},
		findings: []string{"UnprotectedExporter Deployment/nodes"},
	}, {
		name: "known exporter that opted in: NotInjected, not both",
		extra: func() []any {
			tmpl := appTemplate(nil, optInAnnotation)
			tmpl.Spec.Containers[0].Image = "nvcr.io/nvidia/k8s/dcgm-exporter:3.3.5"
			dep, rs := deployment("gpu-exporter", tmpl)
			return []any{dep, rs, podOf(t, d, dep, rs, "a", false, "")}
		},
		findings: []string{"NotInjected Deployment/gpu-exporter"},
	}, {
		name: "port named metrics",
		extra: func() []any {
			dep, rs := deployment("app", appTemplate(nil, nil))
			return []any{dep, rs, podOf(t, d, dep, rs, "a", false, "")}
		},
		findings: []string{"UnprotectedMetricsPort Deployment/app"},
	}, {
		name:     "Service by the app's port number in rename mode",
		extra:    func() []any { return []any{service("dcgm", intstr.FromInt32(9400))} },
		findings: []string{"ServiceTargetsAppPort Service/dcgm"},
		fix:      "set spec.ports[0].targetPort to metrics",
	}, {
		name:     "Service by name",
		extra:    func() []any { return []any{service("dcgm", intstr.FromString("metrics"))} },
		findings: []string{},
	}, {
		name:        "ignore-paths covers /metrics",
		annotations: map[string]string{inject.AnnotationIgnorePaths: "/health,/metr*"},
		findings:    []string{"UnauthenticatedPath Deployment/dcgm"},
		message:     `serves /metrics to anyone, without authentication or authorization: rbac-proxy.io/ignore-paths is "/health,/metr*"`,
		fix:         "remove the patterns that match /metrics from rbac-proxy.io/ignore-paths in spec.template.metadata.annotations (it is for paths such as /health)",
	}, {
		name:        "ignore-paths of other paths only",
		annotations: map[string]string{inject.AnnotationIgnorePaths: "/health,/metrics/*"},
		findings:    []string{},
	}, {
		name:        "Service by number in takeover mode reaches the proxy",
		annotations: map[string]string{inject.AnnotationPortMode: "takeover", inject.AnnotationUpstreamListen: "env:LISTEN={host}:{port}"},
		extra:       func() []any { return []any{service("dcgm", intstr.FromInt32(9400))} },
		findings:    []string{},
	}, {
		name: "ServiceMonitor over http, as the GPU operator's",
		extra: func() []any {
			return []any{service("dcgm", intstr.FromString("metrics")), serviceMonitor(func(*monitoringv1.Endpoint) {})}
		},
		findings: []string{"PlainHTTPScrape ServiceMonitor/dcgm"},
		message:  "endpoints[0].scheme is http, the default, not https; endpoints[0].tlsConfig has no ca; endpoints[0].tlsConfig has no serverName (the certificate names the Service, not the Pod's address); endpoints[0] has no credentials",
		fix:      "rbac-proxy-injector scrape-config deployment/dcgm -n gpu",
	}, {
		name: "ServiceMonitor as scrape-config writes it",
		extra: func() []any {
			return []any{service("dcgm", intstr.FromString("metrics")), serviceMonitor(scrapedCorrectly)}
		},
		findings: []string{},
	}, {
		name: "ServiceMonitor that skips the certificate's verification",
		extra: func() []any {
			return []any{service("dcgm", intstr.FromString("metrics")), serviceMonitor(func(ep *monitoringv1.Endpoint) {
				scrapedCorrectly(ep)
				ep.TLSConfig.InsecureSkipVerify = ptr.To(true)
			})}
		},
		findings: []string{"PlainHTTPScrape ServiceMonitor/dcgm"},
		message:  "but endpoints[0].tlsConfig.insecureSkipVerify is true: Prometheus sends its credentials to whoever answers",
	}, {
		name: "ServiceMonitor without a serverName",
		extra: func() []any {
			return []any{service("dcgm", intstr.FromString("metrics")), serviceMonitor(func(ep *monitoringv1.Endpoint) {
				scrapedCorrectly(ep)
				ep.TLSConfig.ServerName = nil
			})}
		},
		findings: []string{"PlainHTTPScrape ServiceMonitor/dcgm"},
		message:  "but endpoints[0].tlsConfig has no serverName",
	}, {
		name: "ServiceMonitor sending a token that follows redirects",
		extra: func() []any {
			return []any{service("dcgm", intstr.FromString("metrics")), serviceMonitor(func(ep *monitoringv1.Endpoint) {
				scrapedCorrectly(ep)
				ep.FollowRedirects = nil
			})}
		},
		findings: []string{"PlainHTTPScrape ServiceMonitor/dcgm"},
		message:  "but endpoints[0].followRedirects is not false: a redirect, to plain http too, takes its token elsewhere",
	}, {
		name: "ServiceMonitor with a scrape class that follows redirects",
		extra: func() []any {
			sm := serviceMonitor(func(ep *monitoringv1.Endpoint) {
				scrapedCorrectly(ep)
				ep.Authorization, ep.FollowRedirects = nil, ptr.To(true)
			})
			sm.Spec.ScrapeClassName = ptr.To("rbac-proxy-gpu")
			return []any{service("dcgm", intstr.FromString("metrics")), sm}
		},
		findings: []string{"PlainHTTPScrape ServiceMonitor/dcgm"},
		message:  "but endpoints[0].followRedirects is not false",
	}, {
		name: "ServiceMonitor with a client certificate that follows redirects: nothing to take",
		extra: func() []any {
			return []any{service("dcgm", intstr.FromString("metrics")), serviceMonitor(func(ep *monitoringv1.Endpoint) {
				scrapedCorrectly(ep)
				ep.Authorization, ep.FollowRedirects = nil, nil
				ep.TLSConfig.Cert = monitoringv1.SecretOrConfigMap{Secret: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "scraper"}, Key: "tls.crt"}}
				ep.TLSConfig.KeySecret = &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "scraper"}, Key: "tls.key"}
			})}
		},
		findings: []string{},
	}, {
		name: "PodMonitor that skips the certificate's verification",
		extra: func() []any {
			return []any{&monitoringv1.PodMonitor{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "dcgm"}, Spec: monitoringv1.PodMonitorSpec{
				Selector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "dcgm"}},
				PodMetricsEndpoints: []monitoringv1.PodMetricsEndpoint{{Port: ptr.To("metrics"), Scheme: ptr.To(monitoringv1.SchemeHTTPS),
					HTTPConfigWithProxy: monitoringv1.HTTPConfigWithProxy{HTTPConfig: monitoringv1.HTTPConfig{
						HTTPConfigWithoutTLS: monitoringv1.HTTPConfigWithoutTLS{Authorization: &monitoringv1.SafeAuthorization{Credentials: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "token"}, Key: "token"}}, FollowRedirects: ptr.To(false)},
						TLSConfig:            &monitoringv1.SafeTLSConfig{CA: monitoringv1.SecretOrConfigMap{Secret: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "ca"}, Key: "ca.crt"}}, ServerName: ptr.To("dcgm.gpu.svc"), InsecureSkipVerify: ptr.To(true)},
					}}}},
			}}}
		},
		findings: []string{"PlainHTTPScrape PodMonitor/dcgm"},
		message:  "but podMetricsEndpoints[0].tlsConfig.insecureSkipVerify is true",
	}, {
		name: "ServiceMonitor with https and a scrape class, no CA",
		extra: func() []any {
			sm := serviceMonitor(func(ep *monitoringv1.Endpoint) { ep.Scheme = ptr.To(monitoringv1.SchemeHTTPS) })
			sm.Spec.ScrapeClassName = ptr.To("rbac-proxy")
			return []any{service("dcgm", intstr.FromString("metrics")), sm}
		},
		findings: []string{"PlainHTTPScrape ServiceMonitor/dcgm"},
		message:  "scrapes the proxy of Deployment gpu/dcgm but endpoints[0].tlsConfig has no ca",
	}, {
		name: "ServiceMonitor of another namespace",
		extra: func() []any {
			sm := serviceMonitor(func(*monitoringv1.Endpoint) {})
			sm.Spec.NamespaceSelector = monitoringv1.NamespaceSelector{}
			return []any{service("dcgm", intstr.FromString("metrics")), sm}
		},
		findings: []string{},
	}, {
		name: "PodMonitor over http",
		extra: func() []any {
			return []any{&monitoringv1.PodMonitor{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "dcgm"}, Spec: monitoringv1.PodMonitorSpec{
				Selector:            metav1.LabelSelector{MatchLabels: map[string]string{"app": "dcgm"}},
				PodMetricsEndpoints: []monitoringv1.PodMetricsEndpoint{{Port: ptr.To("metrics")}},
			}}}
		},
		findings: []string{"PlainHTTPScrape PodMonitor/dcgm"},
		message:  "podMetricsEndpoints[0].scheme is http",
	}, {
		name: "PodMonitor by the app's port number in rename mode",
		extra: func() []any {
			return []any{&monitoringv1.PodMonitor{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "direct"}, Spec: monitoringv1.PodMonitorSpec{
				Selector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "dcgm"}}, PodMetricsEndpoints: []monitoringv1.PodMetricsEndpoint{{PortNumber: ptr.To[int32](9400)}}}}}
		},
		findings: []string{"ServiceTargetsAppPort PodMonitor/direct"},
		message:  "PodMonitor direct scrapes the app of Deployment gpu/dcgm past the proxy, in plain http: podMetricsEndpoints[0].portNumber is 9400, the app's",
		fix:      "set podMetricsEndpoints[0].port to metrics",
	}, {
		name: "PodMonitor naming no port in rename mode",
		extra: func() []any {
			return []any{&monitoringv1.PodMonitor{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "direct"}, Spec: monitoringv1.PodMonitorSpec{
				Selector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "dcgm"}}, PodMetricsEndpoints: []monitoringv1.PodMetricsEndpoint{{}}}}}
		},
		findings: []string{"ServiceTargetsAppPort PodMonitor/direct"},
		message:  "podMetricsEndpoints[0] names no port, so it scrapes every port of the Pods, the app's 9400 too",
		fix:      "set podMetricsEndpoints[0].port to metrics",
	}, {
		name:        "PodMonitor by the port number in takeover mode reaches the proxy",
		annotations: map[string]string{inject.AnnotationPortMode: "takeover", inject.AnnotationUpstreamListen: "env:LISTEN={host}:{port}"},
		extra: func() []any {
			return []any{&monitoringv1.PodMonitor{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "direct"}, Spec: monitoringv1.PodMonitorSpec{
				Selector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "dcgm"}}, PodMetricsEndpoints: []monitoringv1.PodMetricsEndpoint{{PortNumber: ptr.To[int32](9400), Scheme: ptr.To(monitoringv1.SchemeHTTPS)}}}}}
		},
		findings: []string{"PlainHTTPScrape PodMonitor/direct"},
		message:  "podMetricsEndpoints[0].tlsConfig has no ca",
	}, {
		name: "ServiceMonitor by the app's target port number in rename mode",
		extra: func() []any {
			return []any{service("dcgm", intstr.FromString("metrics")), serviceMonitor(func(ep *monitoringv1.Endpoint) {
				scrapedCorrectly(ep)
				ep.Port, ep.TargetPort = "", ptr.To(intstr.FromInt32(9400))
			})}
		},
		findings: []string{"ServiceTargetsAppPort ServiceMonitor/dcgm"},
		message:  "endpoints[0].targetPort is 9400, the app's",
		fix:      "set endpoints[0].targetPort to metrics",
	}, {
		name:     "Certificate missing",
		edit:     func(s *Snapshot) { s.Certificates = nil },
		findings: []string{"CertificateNotReady Certificate/rbac-proxy-deployment-dcgm"},
		message:  "does not exist",
		fix:      "kubectl describe certificate rbac-proxy-deployment-dcgm -n gpu",
	}, {
		name: "Certificate not Ready",
		edit: func(s *Snapshot) {
			s.Certificates = []cmapi.Certificate{*certificate("dcgm", cmmeta.ConditionFalse, "Pending")}
		},
		findings: []string{"CertificateNotReady Certificate/rbac-proxy-deployment-dcgm"},
		message:  "is not Ready: Pending: details",
	}, {
		name:        "client CA holding the serving CA",
		annotations: map[string]string{inject.AnnotationClientCA: "configmap:trusted"},
		edit: func(s *Snapshot) {
			s.ClientCAs = []ClientCABundle{{Namespace: testNS, Source: inject.ClientCAConfigMap, Name: "trusted", Key: "ca.crt", Found: true, PEM: append(append([]byte{}, otherCA...), servingCA...)}}
			s.ServingCAs = []ServingCA{{Namespace: testNS, Secret: "rbac-proxy-deployment-other", CA: servingCA}}
		},
		findings: []string{"ClientCATrustsServingCA Deployment/dcgm"},
		message:  `holds "CN=serving CA", the CA of serving Secret rbac-proxy-deployment-other`,
		fix:      "set rbac-proxy.io/client-ca: scrapers in spec.template.metadata.annotations (a CA that signs scrapers only)",
	}, {
		name:        "client CA of its own",
		annotations: map[string]string{inject.AnnotationClientCA: "configmap:trusted"},
		edit: func(s *Snapshot) {
			s.ClientCAs = []ClientCABundle{{Namespace: testNS, Source: inject.ClientCAConfigMap, Name: "trusted", Key: "ca.crt", Found: true, PEM: otherCA}}
			s.ServingCAs = []ServingCA{{Namespace: testNS, Secret: "rbac-proxy-deployment-other", CA: servingCA}}
		},
		findings: []string{},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			ann := map[string]string{inject.AnnotationInject: "true"}
			for k, v := range tc.annotations {
				ann[k] = v
			}
			dep, rs := deployment("dcgm", appTemplate(nil, ann))
			objs := []any{dep, rs, podOf(t, d, dep, rs, "a", true, tc.image), certificate("dcgm", cmmeta.ConditionTrue, "Ready")}
			if tc.extra != nil {
				objs = append(objs, tc.extra()...)
			}
			s := snapshotOf(namespace(nil), objs...)
			if tc.edit != nil {
				tc.edit(s)
			}
			r := run(t, d, s)
			if got := findingKeys(r); !slices.Equal(got, tc.findings) {
				t.Fatalf("findings %v, want %v:\n%+v", got, tc.findings, r.Findings)
			}
			if len(r.Findings) == 0 {
				return
			}
			f := r.Findings[0]
			if !strings.Contains(f.Message, tc.message) || !strings.HasPrefix(f.Fix, tc.fix) || f.Severity != severityOf(f.Code) {
				t.Errorf("finding %+v, want a message with %q, a fix starting %q", f, tc.message, tc.fix)
			}
		})
	}
}
