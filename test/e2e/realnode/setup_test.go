package realnode

import (
	"context"
	"crypto/x509"
	"fmt"
	"strings"
	"testing"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/rbac-proxy/rbac-proxy/internal/testpki"
	"github.com/rbac-proxy/rbac-proxy/test/framework"
	"github.com/rbac-proxy/rbac-proxy/test/story"
	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// env is the running story the subtests share.
type env struct {
	// ns holds the exporters.
	ns       string
	injector *framework.Injector
	// injectorBin is the rbac-proxy-injector the chart's webhook runs, and scrape-config.
	injectorBin string
	// pods are the exporters' Pods by workload name, as they were once Ready.
	pods    map[string]*corev1.Pod
	targets []target
	// proms are the Prometheus' APIs by scraper name.
	proms map[string]*promAPI
	// servingCA verifies every proxy's serving certificate, as Prometheus does.
	servingCA  *x509.CertPool
	serverName string
}

// setUp installs the chart, deploys the exporters and the Prometheus Pods and waits until all
// are Ready.
func setUp(t *testing.T) *env {
	ctx := t.Context()
	e := &env{pods: map[string]*corev1.Pod{}, proms: map[string]*promAPI{}}
	e.installChart(t)
	ns, err := cp.CreateNamespace(ctx, "gpu", map[string]string{inject.LabelInject: inject.NamespaceInjectEnabled})
	if err != nil {
		t.Fatal(err)
	}
	e.ns, e.serverName = ns, metricsService+"."+ns+".svc"
	create(t, append(exporterObjects(ns), scraperRBAC(ns)...)...)
	e.trustServingCA(t)
	e.issueClientCertificate(t)
	e.deployExporters(t)
	e.startPrometheus(t)
	return e
}

// create creates the objects, failing t on the first error.
func create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := cp.Client.Create(t.Context(), o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
}

// installChart installs the chart with the proxy image the node imported; the webhook runs on
// the host (the API server calls it by URL), so the chart's own webhook Pods are kept off the
// node. The scrapers' CA lives in Prometheus' namespace, where Prometheus reads its client
// certificate, as the README installs it.
func (e *env) installChart(t *testing.T) {
	ctx := t.Context()
	bin, err := framework.Build(ctx, "./cmd/webhook")
	if err != nil {
		t.Fatal(err)
	}
	create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: monitoringNS}})
	i := strings.LastIndex(images.proxy, ":")
	e.injectorBin = bin
	e.injector, err = cp.InstallChart(ctx, bin,
		"image.repository="+images.proxy[:i], "image.tag="+images.proxy[i+1:],
		"proxy.image.pullPolicy=Never",
		"scrapersCA.namespace="+monitoringNS,
		"nodeSelector.rbac-proxy-webhook=host-process")
	if err != nil {
		t.Fatalf("installing the chart: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("webhook log:\n%s", e.injector.Log())
		}
	})
}

// scraperRBAC lets Prometheus' ServiceAccount and its client certificate's user get /metrics,
// which the proxies ask the API server by SubjectAccessReview.
func scraperRBAC(ns string) []client.Object {
	role := ns + "-metrics-reader"
	var subjects []rbacv1.Subject
	for _, s := range scrapers {
		if s.rights {
			subjects = append(subjects, rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: monitoringNS, Name: s.name})
		}
	}
	subjects = append(subjects, rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: clientName})
	return []client.Object{
		&rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{Name: role},
			Rules:      []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}},
		},
		&rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: role},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   subjects,
		},
	}
}

// trustServingCA copies the chart's serving CA (the ClusterIssuer's root) into a ConfigMap of
// Prometheus' namespace, as the README tells an operator to.
func (e *env) trustServingCA(t *testing.T) {
	ctx := t.Context()
	root, err := story.WaitForSecret(ctx, cp, framework.CertManagerNamespace, framework.ReleaseFullname+"-root-ca")
	if err != nil {
		t.Fatal(err)
	}
	ca := root.Data[corev1.TLSCertKey]
	if e.servingCA, err = testpki.PoolFromPEM(ca); err != nil {
		t.Fatalf("the serving CA: %v", err)
	}
	create(t, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: monitoringNS, Name: servingCAConfig},
		Data:       map[string]string{"ca.crt": string(ca)},
	})
}

// issueClientCertificate has cert-manager issue Prometheus' client certificate from the
// scrapers' Issuer, in Prometheus' namespace.
func (e *env) issueClientCertificate(t *testing.T) {
	create(t, &cmv1.Certificate{
		ObjectMeta: metav1.ObjectMeta{Namespace: monitoringNS, Name: clientName},
		Spec: cmv1.CertificateSpec{
			CommonName: clientName,
			SecretName: clientCertSecret,
			Usages:     []cmv1.KeyUsage{cmv1.UsageClientAuth, cmv1.UsageDigitalSignature},
			PrivateKey: &cmv1.CertificatePrivateKey{Algorithm: cmv1.ECDSAKeyAlgorithm, Size: 256},
			IssuerRef:  cmmeta.IssuerReference{Kind: cmv1.IssuerKind, Name: framework.ScrapersIssuer},
		},
	})
	if _, err := story.WaitForSecret(t.Context(), cp, monitoringNS, clientCertSecret); err != nil {
		t.Fatal(err)
	}
}

// deployExporters creates the workloads and waits for each one's Pod to be Ready: admitted
// through the webhook, its Certificate made by the injector's controller and issued by
// cert-manager, the Secret mounted by the kubelet, the proxy and the app probed.
func (e *env) deployExporters(t *testing.T) {
	ctx := t.Context()
	for _, w := range workloads {
		start := time.Now()
		create(t, w.object(e.ns))
		pods, err := cp.WaitPodsReady(ctx, e.ns, nameLabel+"="+w.name, 1, 2*time.Minute)
		if err != nil {
			t.Fatalf("%s %s: %v", w.kind, w.name, err)
		}
		figure(t, fmt.Sprintf("%s %s (%s): created → Pod Ready with the sidecar", w.kind, w.name, w.mode), "%s", time.Since(start).Round(10*time.Millisecond))
		e.pods[w.name] = &pods[0]
		e.targets = append(e.targets, target{workload: w, pod: pods[0].Name, ip: pods[0].Status.PodIP})
	}
}

// startPrometheus creates each scraper's ServiceAccount, configuration and Pod, with every
// exporter Pod's IP as a target, and waits for it to be Ready.
func (e *env) startPrometheus(t *testing.T) {
	ctx := t.Context()
	audience := inject.LocalAudience(e.ns)
	for _, s := range scrapers {
		conf, err := s.config(e.ns, e.targets)
		if err != nil {
			t.Fatal(err)
		}
		sa, cm, pod := s.objects(e.ns, audience, conf)
		start := time.Now()
		create(t, sa, cm, pod)
		pods, err := cp.WaitPodsReady(ctx, monitoringNS, nameLabel+"="+s.name, 1, 2*time.Minute)
		if err != nil {
			t.Fatalf("Prometheus %s: %v", s.name, err)
		}
		figure(t, "Prometheus "+s.name+": created → Ready", "%s", time.Since(start).Round(10*time.Millisecond))
		e.proms[s.name] = newPromAPI(pods[0].Status.PodIP)
	}
}

// refresh reads the workload's Pod again.
func (e *env) refresh(ctx context.Context, w string) (*corev1.Pod, error) {
	return cp.Clientset.CoreV1().Pods(e.ns).Get(ctx, e.pods[w].Name, metav1.GetOptions{})
}
