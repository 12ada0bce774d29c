package check

import (
	"context"
	"fmt"
	"strings"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"golang.org/x/sync/errgroup"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/rbac-proxy/rbac-proxy/test/framework"
	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

const (
	appImage  = "example.com/app:1"
	appPort   = 9090
	dcgmImage = "nvcr.io/nvidia/k8s/dcgm-exporter:3.3.8-3.6.0-ubuntu22.04"
	dcgmPort  = 9400
	// servingCAConfigMap holds the ca.crt of a serving Secret: a client CA anyone allowed a
	// Certificate from the default issuer gets a client certificate of.
	servingCAConfigMap = "serving-ca"
)

// The workloads: healthy has nothing wrong; each other one exactly one thing, so that a finding
// names the workload it is about.
const (
	healthy   = "healthy"
	stale     = "stale"     // injected by the release before the upgrade: StaleProxy
	plainHTTP = "plainhttp" // a ServiceMonitor scraping it as the GPU operator's does: PlainHTTPScrape
	byPort    = "byport"    // rename mode, a Service targeting the app's port by number: ServiceTargetsAppPort
	noReview  = "noreview"  // a ServiceAccount without system:auth-delegator: ProxyCannotReview
	forbidden = "forbidden" // resource attributes the scraper has no rights on: ScraperForbidden
	noCert    = "nocert"    // an allowed Issuer that does not exist: CertificateNotReady
	clientCA  = "clientca"  // a client CA that is the serving CA: ClientCATrustsServingCA
	invalid   = "invalid"   // an annotation the webhook refuses: InvalidPolicy
	late      = "late"      // created before its namespace was labelled: NotInjected
	dcgm      = "dcgm-exporter"
	metrics   = "metrics-app" // a port named metrics, no preset image: UnprotectedMetricsPort
	podMon    = "podmon"      // a PodMonitor scraping it in plain http: PlainHTTPScrape
)

// kinds are the workloads that are not Deployments: check reads every kind the injector serves.
var kinds = map[string]string{noReview: "StatefulSet", metrics: "Pod"}

// kindOf is the kind of the workload name.
func kindOf(name string) string {
	if k, ok := kinds[name]; ok {
		return k
	}
	return "Deployment"
}

// deployment is a one-replica Deployment of an app with a port named metrics, running as the
// exporter ServiceAccount.
func deployment(ns, name string, annotations map[string]string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: annotations},
				Spec: corev1.PodSpec{
					ServiceAccountName: exporterSA,
					Containers: []corev1.Container{{
						Name: "app", Image: appImage,
						Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: appPort}},
					}},
				},
			},
		},
	}
}

// service selects the workload's Pods on port metrics, to targetPort.
func service(ns, name string, target intstr.IntOrString) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": name}},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": name},
			Ports:    []corev1.ServicePort{{Name: "metrics", Port: 443, TargetPort: target}},
		},
	}
}

// serviceMonitor selects the workload's Service; endpoint is its one endpoint.
func serviceMonitor(ns, name string, endpoint monitoringv1.Endpoint) *monitoringv1.ServiceMonitor {
	return &monitoringv1.ServiceMonitor{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: monitoringv1.ServiceMonitorSpec{
			Selector:  metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Endpoints: []monitoringv1.Endpoint{endpoint},
		},
	}
}

// podMonitor scrapes the workload's Pods on port metrics, in plain http.
func podMonitor(ns, name string) *monitoringv1.PodMonitor {
	return &monitoringv1.PodMonitor{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: monitoringv1.PodMonitorSpec{
			Selector:            metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			PodMetricsEndpoints: []monitoringv1.PodMetricsEndpoint{{Port: ptr.To("metrics")}},
		},
	}
}

// certificateName is the Certificate (and Secret) the injector makes for the workload name.
func certificateName(name string) string {
	return inject.CertificateName(inject.Workload{Kind: kindOf(name), Name: name})
}

// createLate creates the late workload in its namespace before anything labels it.
func (c *cluster) createLate(ctx context.Context) error {
	if err := c.create(ctx, deployment(c.late, late, nil)); err != nil {
		return err
	}
	return c.waitPods(ctx, c.late, late, 1)
}

// labelLate opts the late namespace in once its Pods run without the proxy.
func (c *cluster) labelLate(ctx context.Context) error {
	ns := &corev1.Namespace{}
	if err := c.client.Get(ctx, client.ObjectKey{Name: c.late}, ns); err != nil {
		return err
	}
	patch := client.MergeFrom(ns.DeepCopy())
	ns.Labels[inject.LabelInject] = inject.NamespaceInjectEnabled
	return c.client.Patch(ctx, ns, patch)
}

// createStale creates the stale workload while the chart's first release runs, and waits until
// its injector made the workload's Certificate (the upgraded one will not: the proxy is not its).
func (c *cluster) createStale(ctx context.Context) error {
	if err := c.create(ctx, deployment(c.gpu, stale, nil)); err != nil {
		return err
	}
	if err := c.waitPods(ctx, c.gpu, stale, 1); err != nil {
		return err
	}
	name := certificateName(stale)
	return framework.Eventually(ctx, time.Minute, "Certificate "+name, func(ctx context.Context) (bool, error) {
		err := c.client.Get(ctx, client.ObjectKey{Namespace: c.gpu, Name: name}, &cmapi.Certificate{})
		return err == nil, client.IgnoreNotFound(err)
	})
}

// createWorkloads creates every other workload, with the Services and ServiceMonitors that
// reach them, each in its own goroutine.
func (c *cluster) createWorkloads(ctx context.Context) error {
	gpu := c.gpu
	sets := [][]client.Object{
		// Its ServiceMonitor is scrape-config's, once the Certificate it names exists; its proxy
		// verifies tokens of its own audience (scrape-config refuses to hand Prometheus' own).
		{deployment(gpu, healthy, map[string]string{inject.AnnotationTokenVerification: "local"}), service(gpu, healthy, intstr.FromString("metrics"))},
		// Like the GPU operator's ServiceMonitor: a port and a path, no scheme, no TLS.
		{deployment(gpu, plainHTTP, nil), service(gpu, plainHTTP, intstr.FromString("metrics")),
			serviceMonitor(gpu, plainHTTP, monitoringv1.Endpoint{Port: "metrics", Path: "/metrics"})},
		{deployment(gpu, byPort, nil), service(gpu, byPort, intstr.FromInt32(appPort))},
		{&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: gpu, Name: noReview}},
			statefulSet(withServiceAccount(deployment(gpu, noReview, nil), noReview))},
		{deployment(gpu, podMon, nil), podMonitor(gpu, podMon)},
		{deployment(gpu, forbidden, map[string]string{
			inject.AnnotationResourceAttributes: "namespace=" + gpu + ",resource=services,subresource=proxy,name=" + forbidden,
		})},
		{deployment(gpu, noCert, map[string]string{inject.AnnotationIssuer: "Issuer/missing"})},
		{deployment(gpu, clientCA, map[string]string{inject.AnnotationClientCA: "configmap:" + servingCAConfigMap})},
		{deployment(gpu, invalid, map[string]string{inject.AnnotationAuthz: "rbac"})},
		// Unprotected workloads need no ServiceAccount of their own.
		{withServiceAccount(withImage(deployment(c.plain, dcgm, nil), dcgmImage, dcgmPort), "default")},
		{pod(withServiceAccount(deployment(c.plain, metrics, nil), "default"))},
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, objs := range sets {
		g.Go(func() error { return c.create(gctx, objs...) })
	}
	return g.Wait()
}

// statefulSet is d as a StatefulSet.
func statefulSet(d *appsv1.Deployment) *appsv1.StatefulSet {
	return &appsv1.StatefulSet{
		ObjectMeta: d.ObjectMeta,
		Spec:       appsv1.StatefulSetSpec{Replicas: d.Spec.Replicas, Selector: d.Spec.Selector, Template: d.Spec.Template},
	}
}

// pod is d's Pod, without a controller.
func pod(d *appsv1.Deployment) *corev1.Pod {
	t := d.Spec.Template
	t.ObjectMeta.Namespace, t.ObjectMeta.Name = d.Namespace, d.Name
	return &corev1.Pod{ObjectMeta: t.ObjectMeta, Spec: t.Spec}
}

func withServiceAccount(d *appsv1.Deployment, sa string) *appsv1.Deployment {
	d.Spec.Template.Spec.ServiceAccountName = sa
	return d
}

func withImage(d *appsv1.Deployment, image string, port int32) *appsv1.Deployment {
	d.Spec.Template.Spec.Containers[0].Image = image
	d.Spec.Template.Spec.Containers[0].Ports[0].ContainerPort = port
	return d
}

// waitSettled waits until nothing check reads changes any more: every Deployment has its Pod
// (the invalid one its ReplicaSet, whose Pods the webhook denies), every Certificate is Ready
// but nocert's, which cert-manager has marked not Ready, and the client CA ConfigMap holds the
// serving CA.
func (c *cluster) waitSettled(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, w := range []struct{ ns, name string }{
		{c.gpu, healthy}, {c.gpu, plainHTTP}, {c.gpu, podMon}, {c.gpu, byPort}, {c.gpu, noReview}, {c.gpu, forbidden},
		{c.gpu, noCert}, {c.gpu, clientCA}, {c.plain, dcgm}, {c.plain, metrics},
	} {
		g.Go(func() error { return c.waitPods(gctx, w.ns, w.name, 1) })
	}
	for _, name := range []string{healthy, stale, plainHTTP, podMon, byPort, noReview, forbidden, clientCA} {
		g.Go(func() error { return c.waitCertificate(gctx, name, cmmeta.ConditionTrue) })
	}
	g.Go(func() error { return c.waitCertificate(gctx, noCert, cmmeta.ConditionFalse) })
	g.Go(func() error { return c.waitReplicaFailure(gctx, invalid) })
	g.Go(func() error { return c.createServingCAConfigMap(gctx) })
	g.Go(func() error { return c.createScrapeConfig(gctx, healthy) })
	return g.Wait()
}

// createScrapeConfig applies the ServiceMonitor `scrape-config` prints for the workload name, as
// an operator would: the API server validates it against prometheus-operator's CRD, strictly.
func (c *cluster) createScrapeConfig(ctx context.Context, name string) error {
	err := framework.Eventually(ctx, 2*time.Minute, "Certificate "+certificateName(name), func(ctx context.Context) (bool, error) {
		err := c.client.Get(ctx, client.ObjectKey{Namespace: c.gpu, Name: certificateName(name)}, &cmapi.Certificate{})
		return err == nil, client.IgnoreNotFound(err)
	})
	if err != nil {
		return err
	}
	args := []string{strings.ToLower(kindOf(name)) + "/" + name, "-n", c.gpu, "-o", "servicemonitor", "--prometheus-namespace", c.monitoring}
	r, err := c.command(ctx, cp.KubeconfigPath, "scrape-config", args...)
	if err != nil {
		return err
	}
	if r.code != 0 {
		return fmt.Errorf("scrape-config %q exited %d: %s", args, r.code, r.stderr)
	}
	objs, err := framework.DecodeObjects(string(r.stdout))
	if err != nil {
		return fmt.Errorf("decoding what scrape-config %q printed: %w\n%s", args, err, r.stdout)
	}
	var sm *unstructured.Unstructured
	for _, o := range objs {
		sm = o
	}
	if len(objs) != 1 || sm.GetKind() != monitoringv1.ServiceMonitorsKind || sm.GetNamespace() != c.gpu {
		return fmt.Errorf("scrape-config %q printed %d objects, want one ServiceMonitor in namespace %s:\n%s", args, len(objs), c.gpu, r.stdout)
	}
	if err := c.client.Create(ctx, sm, client.FieldValidation(metav1.FieldValidationStrict)); err != nil {
		return fmt.Errorf("creating the ServiceMonitor scrape-config %q printed: %w\n%s", args, err, r.stdout)
	}
	return nil
}

// waitPods waits for n Pods of the workload name.
func (c *cluster) waitPods(ctx context.Context, ns, name string, n int) error {
	return framework.Eventually(ctx, 2*time.Minute, fmt.Sprintf("%d Pods of %s/%s", n, ns, name), func(ctx context.Context) (bool, error) {
		pods := &corev1.PodList{}
		if err := c.client.List(ctx, pods, client.InNamespace(ns), client.MatchingLabels{"app": name}); err != nil {
			return false, err
		}
		return len(pods.Items) == n, nil
	})
}

// waitCertificate waits until the Certificate of gpu's workload name has the Ready status want.
func (c *cluster) waitCertificate(ctx context.Context, name string, want cmmeta.ConditionStatus) error {
	key := client.ObjectKey{Namespace: c.gpu, Name: certificateName(name)}
	return framework.Eventually(ctx, 2*time.Minute, fmt.Sprintf("Certificate %s Ready=%s", key, want), func(ctx context.Context) (bool, error) {
		cert := &cmapi.Certificate{}
		if err := c.client.Get(ctx, key, cert); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		for _, cond := range cert.Status.Conditions {
			if cond.Type == cmapi.CertificateConditionReady {
				return cond.Status == want, fmt.Errorf("Ready=%s %s: %s", cond.Status, cond.Reason, cond.Message)
			}
		}
		return false, nil
	})
}

// waitReplicaFailure waits until the Deployment reports that its Pods are refused.
func (c *cluster) waitReplicaFailure(ctx context.Context, name string) error {
	return framework.Eventually(ctx, 2*time.Minute, "Deployment "+name+" to report ReplicaFailure", func(ctx context.Context) (bool, error) {
		d := &appsv1.Deployment{}
		if err := c.client.Get(ctx, client.ObjectKey{Namespace: c.gpu, Name: name}, d); err != nil {
			return false, err
		}
		for _, cond := range d.Status.Conditions {
			if cond.Type == appsv1.DeploymentReplicaFailure && cond.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
}

// createServingCAConfigMap copies the ca.crt of healthy's serving Secret into the ConfigMap
// clientca's proxy trusts for client certificates.
func (c *cluster) createServingCAConfigMap(ctx context.Context) error {
	key := client.ObjectKey{Namespace: c.gpu, Name: certificateName(healthy)}
	secret := &corev1.Secret{}
	err := framework.Eventually(ctx, 2*time.Minute, "Secret "+key.String()+" with ca.crt", func(ctx context.Context) (bool, error) {
		err := c.client.Get(ctx, key, secret)
		return err == nil && len(secret.Data["ca.crt"]) > 0, client.IgnoreNotFound(err)
	})
	if err != nil {
		return err
	}
	return c.create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: c.gpu, Name: servingCAConfigMap},
		Data:       map[string]string{"ca.crt": string(secret.Data["ca.crt"])},
	})
}
