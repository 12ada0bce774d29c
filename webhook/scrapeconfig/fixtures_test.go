package scrapeconfig

import (
	"context"
	"fmt"
	"testing"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/rbac-proxy/rbac-proxy/webhook"
	"github.com/rbac-proxy/rbac-proxy/webhook/check"
	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

const testNS = "gpu"

func testDefaults(t testing.TB) *inject.Defaults {
	t.Helper()
	c := webhook.DefaultConfig("rbac-proxy:test")
	c.DefaultIssuer = "ClusterIssuer/rbac-proxy-ca"
	c.ScrapersCASecret = "rbac-proxy/rbac-proxy-scrapers-ca"
	d, err := c.Compile()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// exporter is a Pod template of dcgm-exporter, which the preset moves behind the proxy
// (takeover), with the annotations given; image generic is an exporter no preset knows (rename).
func exporter(image string, ann map[string]string) corev1.PodTemplateSpec {
	port, env := int32(9400), []corev1.EnvVar{{Name: "DCGM_EXPORTER_LISTEN", Value: ":9400"}}
	if image == "generic" {
		port, env = 9090, nil
	}
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app.kubernetes.io/name": "exporter", "tier": "gpu"}, Annotations: ann},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "exporter", Image: "nvcr.io/nvidia/k8s/" + image + ":4.1",
			Env:   env,
			Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: port, Protocol: corev1.ProtocolTCP}},
		}}},
	}
}

// cluster is the objects a case stores: a namespace that asks for the proxy, the exporter's
// Deployment with n injected Pods as the webhook made them, and what else the case adds.
type cluster struct {
	tmpl     corev1.PodTemplateSpec
	pods     int
	services []corev1.Service
	// dnsNames are the stored Certificate's; nil: no Certificate is stored yet.
	dnsNames []string
	extra    []client.Object
}

func (c cluster) build(t testing.TB, d *inject.Defaults) client.Reader {
	t.Helper()
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testNS, Labels: map[string]string{inject.LabelInject: inject.NamespaceInjectEnabled}}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "dcgm-exporter", UID: "deploy-uid"}, Spec: appsv1.DeploymentSpec{Template: c.tmpl}},
	}
	for i := range c.pods {
		objs = append(objs, renderPod(t, d, c.tmpl, i))
	}
	for i := range c.services {
		c.services[i].Namespace = testNS
		objs = append(objs, &c.services[i])
	}
	if c.dnsNames != nil {
		name := inject.CertificateName(exporterWorkload)
		objs = append(objs, &cmapi.Certificate{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: name},
			Spec: cmapi.CertificateSpec{SecretName: name, DNSNames: c.dnsNames}})
	}
	objs = append(objs, c.extra...)
	scheme, err := check.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	return fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).WithStatusSubresource(&corev1.Pod{}).Build()
}

// exporterWorkload is the Deployment the cases store.
var exporterWorkload = inject.Workload{APIVersion: "apps/v1", Kind: "Deployment", Name: "dcgm-exporter", UID: "deploy-uid"}

// renderPod is the i-th Pod of the Deployment, injected by the webhook from tmpl, running.
func renderPod(t testing.TB, d *inject.Defaults, tmpl corev1.PodTemplateSpec, i int) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{ObjectMeta: *tmpl.ObjectMeta.DeepCopy(), Spec: *tmpl.Spec.DeepCopy()}
	pod.Namespace, pod.Name = testNS, fmt.Sprintf("dcgm-exporter-abc-%d", i)
	p, err := inject.NewPolicy(pod, inject.PolicyInput{Defaults: d, Namespace: testNS, Workload: exporterWorkload})
	if err != nil {
		t.Fatal(err)
	}
	inject.Render(pod, p)
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: fmt.Sprintf("10.0.0.%d", 10+i)}
	return pod
}

// service selects the exporter's Pods with one port to targetPort.
func service(name string, labels map[string]string, port string, targetPort intstr.IntOrString) corev1.Service {
	return corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app.kubernetes.io/name": "exporter"},
			Ports:    []corev1.ServicePort{{Name: port, Port: 9400, TargetPort: targetPort, Protocol: corev1.ProtocolTCP}},
		},
	}
}

var deploymentKind = schema.GroupKind{Group: "apps", Kind: "Deployment"}

// describe gathers the exporter's Deployment from the cluster and describes its scrape.
func describe(t testing.TB, c cluster, auth Auth, clientCert string) (*Scrape, []string, error) {
	t.Helper()
	d := testDefaults(t)
	in, warnings, err := Gather(context.Background(), c.build(t, d), d, testNS, deploymentKind, "dcgm-exporter")
	if err != nil {
		return nil, warnings, err
	}
	in.Auth, in.ClientCertSecret = auth, clientCert
	s, err := Describe(in)
	return s, warnings, err
}
