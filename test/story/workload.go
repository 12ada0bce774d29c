package story

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/rbac-proxy/rbac-proxy/test/framework"
	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// The sample workload: dcgm-exporter as NVIDIA ships it, once with the
// default policy (SubjectAccessReview) and once for client certificates.
const (
	ExporterImage      = "nvidia/dcgm-exporter:4.2.3-4.1.3-ubuntu22.04"
	ExporterPort       = 9400
	ExporterSA         = "dcgm-exporter"
	SARExporter        = "dcgm-exporter"
	StaticExporter     = "dcgm-exporter-mtls"
	AllowedClient      = "prometheus-scraper"
	exporterPortName   = "metrics"
	exporterContainer  = "dcgm-exporter"
	authDelegatorRole  = "system:auth-delegator"
	injectedStatusText = "injected"
)

// exporter is one sample Deployment and what admission made of its Pod.
type exporter struct {
	name     string
	pod      *corev1.Pod
	warnings []string
}

type workloads struct {
	sar, static *exporter
	checks      []Check
}

// deployExporters is step 3: label a namespace, give the exporter a
// ServiceAccount allowed to make TokenReviews and SubjectAccessReviews, apply
// the two Deployments and their Services, wait for the Pods
// kube-controller-manager creates, and show what the webhook did to them.
func deployExporters(ctx context.Context, s *teller, env *Env) (*workloads, error) {
	cp := env.CP
	s.progress("labelling a namespace %s=enabled and applying dcgm-exporter", inject.LabelInject)
	ns, err := cp.CreateNamespace(ctx, "gpu", map[string]string{inject.LabelInject: "enabled"})
	if err != nil {
		return nil, err
	}
	env.Namespace = ns
	objs := []client.Object{
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: ExporterSA}},
		&rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: ns + "-" + ExporterSA + "-auth-delegator"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: authDelegatorRole},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: ExporterSA}},
		},
		env.exporterDeployment(ns, SARExporter, nil),
		ExporterService(ns, SARExporter),
		env.exporterDeployment(ns, StaticExporter, map[string]string{
			inject.AnnotationAuthz:          "static",
			inject.AnnotationClientCA:       string(inject.ClientCAScrapers),
			inject.AnnotationAllowedClients: AllowedClient,
		}),
		ExporterService(ns, StaticExporter),
	}
	for _, o := range objs {
		if err := cp.Client.Create(ctx, o); err != nil {
			return nil, fmt.Errorf("creating %T %s: %w", o, o.GetName(), err)
		}
	}
	s.printf("        namespace %s: ServiceAccount %s (bound to %s), Deployments and Services %s and %s\n",
		ns, ExporterSA, authDelegatorRole, SARExporter, StaticExporter)

	w := &workloads{}
	for _, name := range []string{SARExporter, StaticExporter} {
		s.progress("waiting for kube-controller-manager to create the Pod of %s", name)
		pod, err := WaitForPod(ctx, cp, ns, name)
		if err != nil {
			return nil, err
		}
		warnings, err := AdmissionWarnings(ctx, cp, pod, name)
		if err != nil {
			return nil, err
		}
		e := &exporter{name: name, pod: pod, warnings: warnings}
		if name == SARExporter {
			w.sar = e
		} else {
			w.static = e
		}
		printPod(s, e)
		w.checks = append(w.checks, injectionChecks(e)...)
	}
	return w, nil
}

// ExporterDeployment is the sample dcgm-exporter Deployment with Pod annotations.
func ExporterDeployment(ns, name string, annotations map[string]string) *appsv1.Deployment {
	labels := map[string]string{"app.kubernetes.io/name": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: annotations},
				Spec: corev1.PodSpec{
					ServiceAccountName: ExporterSA,
					Containers: []corev1.Container{{
						Name:  exporterContainer,
						Image: ExporterImage,
						Ports: []corev1.ContainerPort{{Name: exporterPortName, ContainerPort: ExporterPort, Protocol: corev1.ProtocolTCP}},
					}},
				},
			},
		},
	}
}

// exporterDeployment is ExporterDeployment as this story runs it: on a real
// node, with the sample exporter's image (imported, never pulled) and the
// probes NVIDIA's dcgm-exporter chart sets, which the webhook moves to the
// proxy's pass-through; otherwise as NVIDIA ships it.
func (e *Env) exporterDeployment(ns, name string, annotations map[string]string) *appsv1.Deployment {
	d := ExporterDeployment(ns, name, annotations)
	if !e.onNode() {
		return d
	}
	c := &d.Spec.Template.Spec.Containers[0]
	c.Image, c.ImagePullPolicy = e.exporterImage, corev1.PullNever
	probe := func() *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/health", Port: intstr.FromInt32(ExporterPort)}},
			PeriodSeconds: 2,
		}
	}
	c.ReadinessProbe, c.LivenessProbe = probe(), probe()
	return d
}

// ExporterService exposes the exporter's port named metrics.
func ExporterService(ns, name string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app.kubernetes.io/name": name}},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app.kubernetes.io/name": name},
			Ports: []corev1.ServicePort{{
				Name: exporterPortName, Port: ExporterPort, TargetPort: intstr.FromString(exporterPortName),
			}},
		},
	}
}

// waitForPod waits for the Pod of Deployment name.
func WaitForPod(ctx context.Context, cp *framework.ControlPlane, ns, name string) (*corev1.Pod, error) {
	var pod *corev1.Pod
	err := framework.Eventually(ctx, 60*time.Second, "the Pod of Deployment "+name, func(ctx context.Context) (bool, error) {
		pods, err := cp.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=" + name})
		if err != nil || len(pods.Items) == 0 {
			return false, err
		}
		pod = &pods.Items[0]
		return true, nil
	})
	return pod, err
}

// AdmissionWarnings creates (dry-run, so nothing is stored and no Certificate
// is made) the Pod of the Deployment's template as its ReplicaSet would, and
// returns the warnings the API server sends back, as kubectl would print them.
func AdmissionWarnings(ctx context.Context, cp *framework.ControlPlane, pod *corev1.Pod, name string) ([]string, error) {
	dep, err := cp.Clientset.AppsV1().Deployments(pod.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	collector := &warningCollector{}
	cfg := rest.CopyConfig(cp.Config)
	cfg.WarningHandler = collector
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dry := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:       pod.Namespace,
			GenerateName:    name + "-",
			Labels:          dep.Spec.Template.Labels,
			Annotations:     dep.Spec.Template.Annotations,
			OwnerReferences: pod.OwnerReferences,
		},
		Spec: *dep.Spec.Template.Spec.DeepCopy(),
	}
	if _, err := cs.CoreV1().Pods(pod.Namespace).Create(ctx, dry, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		return nil, fmt.Errorf("dry-run create of a Pod of %s: %w", name, err)
	}
	return collector.list(), nil
}

// warningCollector is a rest.WarningHandler that keeps the warnings.
type warningCollector struct {
	mu       sync.Mutex
	warnings []string
}

func (c *warningCollector) HandleWarningHeader(_ int, _ string, text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.warnings = append(c.warnings, text)
}

func (c *warningCollector) list() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.warnings...)
}

// injectionChecks: the Pod carries the proxy, and the Service's named
// targetPort now lands on the proxy, not on the exporter.
func injectionChecks(e *exporter) []Check {
	c := inject.ProxyContainer(e.pod)
	injected := "no rbac-proxy container"
	if c != nil {
		injected = "rbac-proxy container, status " + e.pod.Annotations[inject.AnnotationStatus]
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			injected = "native sidecar, status " + e.pod.Annotations[inject.AnnotationStatus]
		}
	}
	target := "no container declares it"
	for _, ct := range append(append([]corev1.Container(nil), e.pod.Spec.InitContainers...), e.pod.Spec.Containers...) {
		for _, p := range ct.Ports {
			if p.Name == exporterPortName {
				target = fmt.Sprintf("%s:%d", ct.Name, p.ContainerPort)
			}
		}
	}
	proxyTarget := "rbac-proxy:"
	return []Check{
		{Name: e.name + ": Pod injected by the webhook", Expected: "native sidecar, status " + injectedStatusText, Got: injected,
			OK: injected == "native sidecar, status "+injectedStatusText},
		{Name: e.name + ": Service targetPort " + exporterPortName, Expected: "the proxy's port", Got: target,
			OK: strings.HasPrefix(target, proxyTarget)},
	}
}

// printPod shows the injected Pod as a user would look at it.
func printPod(s *teller, e *exporter) {
	pod := e.pod
	s.printf("\n  Pod %s/%s (Deployment %s)\n", pod.Namespace, pod.Name, e.name)
	show := func(kind string, c corev1.Container) {
		extra := ""
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			extra = " (native sidecar: restartPolicy Always)"
		}
		s.printf("    %s %s%s\n      image: %s\n", kind, c.Name, extra, c.Image)
		var ports []string
		for _, p := range c.Ports {
			ports = append(ports, fmt.Sprintf("%s=%d/%s", p.Name, p.ContainerPort, p.Protocol))
		}
		if len(ports) > 0 {
			s.printf("      ports: %s\n", strings.Join(ports, ", "))
		}
		if len(c.Args) > 0 {
			s.printf("      args:\n")
			for _, a := range c.Args {
				s.printf("        %s\n", a)
			}
		}
	}
	for _, c := range pod.Spec.InitContainers {
		show("init container", c)
	}
	for _, c := range pod.Spec.Containers {
		show("container", c)
	}
	for _, v := range pod.Spec.Volumes {
		if v.Secret != nil {
			s.printf("    volume %s: Secret %s\n", v.Name, v.Secret.SecretName)
		}
	}
	s.printf("    admission warnings (%d):\n", len(e.warnings))
	for _, w := range e.warnings {
		s.printf("      Warning: %s\n", w)
	}
	s.printf("\n")
}
