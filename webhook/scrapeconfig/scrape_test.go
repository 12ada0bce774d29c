package scrapeconfig

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/rbac-proxy/rbac-proxy/internal/testpki"
	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// local is the exporter's usual policy: tokens verified by the proxy (audience rbac-proxy:gpu)
// and client certificates of the scrapers' CA.
var local = map[string]string{
	inject.AnnotationTokenVerification: "local",
	inject.AnnotationClientCA:          string(inject.ClientCAScrapers),
}

func with(base map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

var serviceLabels = map[string]string{"app.kubernetes.io/name": "exporter"}

const secret = "rbac-proxy-deployment-dcgm-exporter"

func TestDescribe(t *testing.T) {
	fqdn := []string{"dcgm-exporter", "dcgm-exporter.gpu", "dcgm-exporter.gpu.svc", "dcgm-exporter.gpu.svc.cluster.local", "metrics.gpu.svc"}
	for _, tc := range []struct {
		name       string
		c          cluster
		auth       Auth
		clientCert string
		want       Scrape
		output     Output
		// err is a substring of Describe's or Gather's error; warning of a warning.
		err, warning string
	}{
		{
			name: "takeover, token of the proxy's own audience, through the Service",
			c: cluster{tmpl: exporter("dcgm-exporter", local), pods: 2, dnsNames: fqdn,
				services: []corev1.Service{service("metrics", serviceLabels, "metrics", intstr.FromString("metrics"))}},
			auth: AuthToken,
			want: Scrape{Port: PodPort{"metrics", 9400}, Service: &ServicePort{Service: "metrics", Labels: serviceLabels, Port: "metrics"},
				ServerName: "metrics.gpu.svc", Audience: "rbac-proxy:gpu",
				Targets: []Target{{"dcgm-exporter-abc-0", "10.0.0.10"}, {"dcgm-exporter-abc-1", "10.0.0.11"}}},
			output: OutputServiceMonitor,
		},
		{
			name: "takeover, client certificate",
			c:    cluster{tmpl: exporter("dcgm-exporter", local), pods: 1, dnsNames: fqdn},
			auth: AuthCert, clientCert: "prometheus-tls",
			want: Scrape{Port: PodPort{"metrics", 9400}, ServerName: "dcgm-exporter.gpu.svc", ClientCertSecret: "prometheus-tls",
				Targets: []Target{{"dcgm-exporter-abc-0", "10.0.0.10"}}},
			output: OutputPodMonitor,
		},
		{
			name: "rename: the proxy took the port's name, a Service by number reaches the app",
			c: cluster{tmpl: exporter("generic", local), pods: 1, dnsNames: fqdn, services: []corev1.Service{
				service("by-number", serviceLabels, "metrics", intstr.FromInt32(9090)),
				service("by-name", serviceLabels, "web", intstr.FromString("metrics")),
			}},
			auth: AuthToken,
			want: Scrape{Port: PodPort{"metrics", 8443}, Service: &ServicePort{Service: "by-name", Labels: serviceLabels, Port: "web"},
				ServerName: "dcgm-exporter.gpu.svc", Audience: "rbac-proxy:gpu", Targets: []Target{{"dcgm-exporter-abc-0", "10.0.0.10"}}},
			output: OutputServiceMonitor,
		},
		{
			name: "redirect: the app's port, which the Service names, goes to the proxy",
			c: cluster{tmpl: exporter("dcgm-exporter", with(local, inject.AnnotationPortMode, "redirect")), pods: 1, dnsNames: fqdn,
				services: []corev1.Service{service("unlabelled", nil, "", intstr.FromInt32(9400))}},
			auth: AuthToken,
			want: Scrape{Port: PodPort{"metrics", 9400}, Service: &ServicePort{Service: "unlabelled"},
				ServerName: "dcgm-exporter.gpu.svc", Audience: "rbac-proxy:gpu", Targets: []Target{{"dcgm-exporter-abc-0", "10.0.0.10"}}},
			// A ServiceMonitor cannot select a Service without labels.
			output: OutputPodMonitor,
		},
		{
			name: "a path of allow-paths, no Certificate yet",
			c:    cluster{tmpl: exporter("dcgm-exporter", with(local, inject.AnnotationAllowPaths, "/gpu/metrics,/health"))},
			auth: AuthToken,
			want: Scrape{Port: PodPort{"metrics", 9400}, Path: "/gpu/metrics", ServerName: "dcgm-exporter.gpu.svc", Audience: "rbac-proxy:gpu"},
			// The injector's names, with a warning.
			warning: "does not exist yet",
			output:  OutputPodMonitor,
		},
		{
			// A token of the API server's audience is Prometheus' own, which a scrape class
			// would give to every monitor naming it.
			name: "review mode without an audience of the proxy's own",
			c:    cluster{tmpl: exporter("dcgm-exporter", nil), dnsNames: fqdn},
			auth: AuthToken,
			err:  "the proxy of deployment/dcgm-exporter takes tokens of the API server's own audience (rbac-proxy.io/token-verification: review, rbac-proxy.io/token-audiences unset): Prometheus would send it its own ServiceAccount token, which the API server takes as Prometheus, and prometheus-operator gives a scrape class carrying it to every monitor that names the class; set rbac-proxy.io/token-audiences: rbac-proxy:gpu (or rbac-proxy.io/token-verification: local, whose default it is) on the Pod template, or scrape with --auth cert",
		},
		{
			name: "review mode without an audience, by client certificate",
			c:    cluster{tmpl: exporter("dcgm-exporter", map[string]string{inject.AnnotationClientCA: string(inject.ClientCAScrapers)}), dnsNames: fqdn},
			auth: AuthCert, clientCert: "prometheus-tls",
			want:   Scrape{Port: PodPort{"metrics", 9400}, ServerName: "dcgm-exporter.gpu.svc", ClientCertSecret: "prometheus-tls"},
			output: OutputPodMonitor,
		},
		{
			name:   "review mode with the proxy's own audience among others",
			c:      cluster{tmpl: exporter("dcgm-exporter", map[string]string{inject.AnnotationTokenAudiences: "https://kubernetes.default.svc,rbac-proxy:gpu"}), dnsNames: fqdn},
			auth:   AuthToken,
			want:   Scrape{Port: PodPort{"metrics", 9400}, ServerName: "dcgm-exporter.gpu.svc", Audience: "rbac-proxy:gpu"},
			output: OutputPodMonitor,
		},
		{
			name:   "an audience of the proxy's own that is no URL",
			c:      cluster{tmpl: exporter("dcgm-exporter", with(local, inject.AnnotationTokenAudiences, "gpu-metrics")), dnsNames: fqdn},
			auth:   AuthToken,
			want:   Scrape{Port: PodPort{"metrics", 9400}, ServerName: "dcgm-exporter.gpu.svc", Audience: "gpu-metrics"},
			output: OutputPodMonitor,
		},
		{
			// Prometheus would mint a token that the proxies of namespace victim take.
			name: "the audience of another namespace's proxies",
			c:    cluster{tmpl: exporter("dcgm-exporter", with(local, inject.AnnotationTokenAudiences, "rbac-proxy:victim")), dnsNames: fqdn},
			auth: AuthToken,
			err:  `rbac-proxy.io/token-audiences of deployment/dcgm-exporter: "rbac-proxy:victim" is the audience of the proxies of namespace "victim": a token of it, which Prometheus would send to this Pod, is taken there; allowed: rbac-proxy:gpu (the default of rbac-proxy.io/token-verification: local), or an audience of the proxy's own that is no URL`,
		},
		{
			name: "the API server's audience, reviewed",
			c:    cluster{tmpl: exporter("dcgm-exporter", map[string]string{inject.AnnotationTokenAudiences: "https://kubernetes.default.svc.cluster.local"}), dnsNames: fqdn},
			auth: AuthToken,
			err:  `rbac-proxy.io/token-audiences of deployment/dcgm-exporter: "https://kubernetes.default.svc.cluster.local" is a URL, as the API server's audiences (the service-account issuer) are`,
		},
		{
			name: "an audience with a scheme, locally verified",
			c:    cluster{tmpl: exporter("dcgm-exporter", with(local, inject.AnnotationTokenAudiences, "vault:gpu")), dnsNames: fqdn},
			auth: AuthToken,
			err:  `rbac-proxy.io/token-audiences of deployment/dcgm-exporter: "vault:gpu" is a URL`,
		},
		{
			name: "an allow-paths pattern that takes /metrics",
			c:    cluster{tmpl: exporter("dcgm-exporter", with(local, inject.AnnotationAllowPaths, "/metric*")), dnsNames: fqdn},
			auth: AuthToken,
			want: Scrape{Port: PodPort{"metrics", 9400}, ServerName: "dcgm-exporter.gpu.svc", Audience: "rbac-proxy:gpu"},
			// Pods that are not there yet are no warning.
			output: OutputPodMonitor,
		},
		{
			name: "the Pod's own Secret: the names of its certificate",
			c: cluster{tmpl: exporter("dcgm-exporter", with(local, inject.AnnotationTLSSecret, "own-tls")),
				extra: []client.Object{ownSecret(t, "own-tls", "exporter.example.org", "dcgm.gpu.svc")}},
			auth:   AuthToken,
			want:   Scrape{Port: PodPort{"metrics", 9400}, ServerName: "dcgm.gpu.svc", Audience: "rbac-proxy:gpu", CASecret: "own-tls"},
			output: OutputPodMonitor,
		},
		{
			name: "the Pod's own Secret, missing",
			c:    cluster{tmpl: exporter("dcgm-exporter", with(local, inject.AnnotationTLSSecret, "own-tls"))},
			auth: AuthToken,
			err:  "the serving Secret gpu/own-tls (rbac-proxy.io/tls-secret) does not exist, and no Certificate fills it",
		},
		{
			// x509 allows any string in a DNS SAN; printed, this one would be a ClusterRoleBinding.
			name: "a SAN of the Pod's own Secret that is YAML",
			c: cluster{tmpl: exporter("dcgm-exporter", with(local, inject.AnnotationTLSSecret, "own-tls")),
				extra: []client.Object{ownSecret(t, "own-tls", yamlSAN)}},
			auth: AuthToken,
			err:  `the serving certificate of deployment/dcgm-exporter (Secret gpu/own-tls) names "x\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding`,
		},
		{
			name: "a Certificate's name that is no DNS name",
			c:    cluster{tmpl: exporter("dcgm-exporter", local), dnsNames: []string{"Metrics_GPU.gpu.svc"}},
			auth: AuthToken,
			err:  `the serving certificate of deployment/dcgm-exporter (Certificate gpu/rbac-proxy-deployment-dcgm-exporter) names "Metrics_GPU.gpu.svc", which is no DNS name Prometheus can verify (not a DNS-1123 subdomain`,
		},
		{
			name: "allow-paths of patterns only",
			c:    cluster{tmpl: exporter("dcgm-exporter", with(local, inject.AnnotationAllowPaths, "/gpu/*")), dnsNames: fqdn},
			auth: AuthToken,
			err:  "rbac-proxy.io/allow-paths /gpu/* allows no /metrics and names only patterns",
		},
		{
			name: "cert mode where the proxy trusts no client certificate",
			c:    cluster{tmpl: exporter("dcgm-exporter", nil), dnsNames: fqdn},
			auth: AuthCert, clientCert: "prometheus-tls",
			err: "the proxy of deployment/dcgm-exporter trusts no client certificate (rbac-proxy.io/client-ca is not set)",
		},
		{
			name: "a workload that opts out",
			c:    cluster{tmpl: exporter("dcgm-exporter", map[string]string{inject.AnnotationInject: "false"})},
			auth: AuthToken,
			err:  "deployment/dcgm-exporter in namespace gpu is not protected by rbac-proxy: the Pod opts out; rbac-proxy-injector check deployment/dcgm-exporter -n gpu",
		},
		{
			name: "a workload the webhook refuses",
			c:    cluster{tmpl: exporter("dcgm-exporter", map[string]string{inject.AnnotationPortMode: "sideways"})},
			auth: AuthToken,
			err:  "the webhook, with these settings, refuses the Pods of deployment/dcgm-exporter in namespace gpu: rbac-proxy: rbac-proxy.io/port-mode",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, warnings, err := describe(t, tc.c, tc.auth, tc.clientCert)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v; want an error with %q", err, tc.err)
				}
				var np *NotProtectedError
				if strings.Contains(tc.err, "not protected") != errors.As(err, &np) {
					t.Errorf("%v: a *NotProtectedError is %t", err, errors.As(err, &np))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(warnings, "\n"); !strings.Contains(got, tc.warning) || tc.warning == "" && got != "" {
				t.Errorf("warnings %q, want one with %q", got, tc.warning)
			}
			want := tc.want
			want.Namespace, want.Workload, want.PodLabels = testNS, s.Workload, tc.c.tmpl.Labels
			want.Auth = tc.auth
			if want.CASecret == "" {
				want.CASecret = secret
			}
			if want.Path == "" {
				want.Path = "/metrics"
			}
			if diff := cmp.Diff(&want, s); diff != "" {
				t.Errorf("-want +got:\n%s", diff)
			}
			if s.Workload.Kind != "Deployment" || s.Workload.Name != "dcgm-exporter" {
				t.Errorf("workload %+v", s.Workload)
			}
			if got := s.DefaultOutput(); got != tc.output {
				t.Errorf("default output %s, want %s", got, tc.output)
			}
		})
	}
}

// TestDescribeTargetsOnlyTheProxy: Prometheus sends its credentials to the targets, so only
// Pods that run the injector's proxy are targets; a Pod without it, or with only its marks (the
// status annotation, a container named rbac-proxy, the proxy of another image), is a warning
// that says why and names the check command.
func TestDescribeTargetsOnlyTheProxy(t *testing.T) {
	d := testDefaults(t)
	tmpl := exporter("dcgm-exporter", local)
	plain := func(name string) *corev1.Pod {
		pod := &corev1.Pod{ObjectMeta: *tmpl.ObjectMeta.DeepCopy(), Spec: *tmpl.Spec.DeepCopy()}
		pod.Namespace, pod.Name = testNS, name
		pod.Status.Phase, pod.Status.PodIP = "Running", "10.0.0.99"
		return pod
	}
	marked := plain("marked")
	marked.Annotations = map[string]string{inject.AnnotationStatus: inject.StatusInjected}
	named := plain("named")
	named.Spec.Containers = append(named.Spec.Containers, corev1.Container{Name: inject.ContainerName, Image: "attacker/listener"})
	stale := renderPod(t, d, tmpl, 5)
	stale.Name = "stale"
	inject.ProxyContainer(stale).Image = "rbac-proxy:old"
	c := cluster{tmpl: tmpl, pods: 1, extra: []client.Object{plain("before-the-webhook"), marked, named, stale}}
	s, warnings, err := describe(t, c, AuthToken, "")
	if err != nil {
		t.Fatal(err)
	}
	want := "4 of the 5 Pods of deployment/dcgm-exporter run without the injector's proxy and are no target (" +
		"before-the-webhook has no rbac-proxy container; marked has no rbac-proxy container; " +
		"named runs rbac-proxy from image attacker/listener, not the injector's " + d.Image + "; " +
		"stale runs rbac-proxy from image rbac-proxy:old, not the injector's " + d.Image +
		"): rbac-proxy-injector check deployment/dcgm-exporter -n gpu"
	if len(warnings) != 2 || warnings[1] != want {
		t.Errorf("warnings %q, want the Certificate's and %q", warnings, want)
	}
	if len(s.Targets) != 1 || s.Targets[0].Pod != "dcgm-exporter-abc-0" {
		t.Errorf("targets %v, want only the injected Pod", s.Targets)
	}
}

// yamlSAN is a DNS SAN that, printed raw into a comment, ends it and adds a document.
const yamlSAN = "x\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: pwned\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: cluster-admin\nsubjects:\n- kind: ServiceAccount\n  name: default\n  namespace: gpu\n---\n# .gpu.svc"

// ownSecret is a serving Secret a Pod names itself, its certificate for names.
func ownSecret(t *testing.T, name string, names ...string) *corev1.Secret {
	t.Helper()
	ca, err := testpki.NewCA("own")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.Server(names...)
	if err != nil {
		t.Fatal(err)
	}
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: name}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: pair.CertPEM, corev1.TLSPrivateKeyKey: pair.KeyPEM, "ca.crt": ca.CertPEM}}
}
