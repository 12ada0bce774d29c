package realnode

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// The sample exporter as dcgm-exporter runs: port 9400 named metrics, /health probed there.
const (
	exporterSA        = "dcgm-exporter"
	exporterContainer = "dcgm-exporter"
	exporterPort      = 9400
	exporterPortName  = "metrics"
	// takeoverPort is where the dcgm-exporter preset moves the app: the protected port + 10000.
	takeoverPort = exporterPort + 10000
	// redirectProxyPort is the proxy's own port in redirect mode (the chart's proxy.port).
	redirectProxyPort = 8443
	// metricsService is a name every exporter's serving certificate carries (rbac-proxy.io/dns-names),
	// so one Prometheus job verifies them all with one server_name, as a ServiceMonitor of one
	// Service would.
	metricsService = "gpu-metrics"
	nameLabel      = "app.kubernetes.io/name"
)

// workload is one injected exporter: a Deployment or a DaemonSet and the port mode it asks for.
type workload struct {
	name string
	kind string
	mode inject.PortMode
	// annotations are the Pod template's besides those every exporter has.
	annotations map[string]string
}

const (
	kindDeployment = "Deployment"
	kindDaemonSet  = "DaemonSet"
)

// workloads are the exporters the story deploys: takeover (the preset, detected from
// DCGM_EXPORTER_LISTEN) in a Deployment, redirect (nftables in the Pod's netns) in a DaemonSet.
var workloads = []workload{
	{name: "dcgm-exporter", kind: kindDeployment, mode: inject.PortModeTakeover},
	{name: "dcgm-exporter-node", kind: kindDaemonSet, mode: inject.PortModeRedirect,
		annotations: map[string]string{inject.AnnotationPortMode: string(inject.PortModeRedirect)}},
}

// podAnnotations are every exporter's: Prometheus' projected token verified by the proxy itself
// (audience rbac-proxy:<namespace>), client certificates of the scrapers' CA, both authorized by
// SubjectAccessReview, and the shared Service name on the serving certificate.
func podAnnotations(ns string, w workload) map[string]string {
	a := map[string]string{
		inject.AnnotationTokenVerification: "local",
		inject.AnnotationClientCA:          string(inject.ClientCAScrapers),
		inject.AnnotationDNSNames:          metricsService + "." + ns + ".svc",
	}
	for k, v := range w.annotations {
		a[k] = v
	}
	return a
}

// podTemplate is the exporter's Pod: the sample exporter image, listening where dcgm-exporter
// does, with the probes a dcgm-exporter chart gives it.
func podTemplate(ns string, w workload) corev1.PodTemplateSpec {
	probe := func(period, failures int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/health", Port: intstr.FromInt32(exporterPort)}},
			PeriodSeconds: period, FailureThreshold: failures, TimeoutSeconds: 2,
		}
	}
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{nameLabel: w.name}, Annotations: podAnnotations(ns, w)},
		Spec: corev1.PodSpec{
			ServiceAccountName: exporterSA,
			// The kubelet would wait 30s for an exporter that ignores SIGTERM; the test has no time for it.
			TerminationGracePeriodSeconds: ptr.To[int64](2),
			Containers: []corev1.Container{{
				Name:            exporterContainer,
				Image:           images.exporter,
				ImagePullPolicy: corev1.PullNever,
				Env:             []corev1.EnvVar{{Name: "DCGM_EXPORTER_LISTEN", Value: ":9400"}},
				Ports:           []corev1.ContainerPort{{Name: exporterPortName, ContainerPort: exporterPort, Protocol: corev1.ProtocolTCP}},
				ReadinessProbe:  probe(2, 3),
				LivenessProbe:   probe(5, 3),
			}},
		},
	}
}

// object is the workload's Deployment or DaemonSet.
func (w workload) object(ns string) client.Object {
	meta := metav1.ObjectMeta{Namespace: ns, Name: w.name, Labels: map[string]string{nameLabel: w.name}}
	selector := &metav1.LabelSelector{MatchLabels: map[string]string{nameLabel: w.name}}
	if w.kind == kindDaemonSet {
		return &appsv1.DaemonSet{ObjectMeta: meta, Spec: appsv1.DaemonSetSpec{Selector: selector, Template: podTemplate(ns, w)}}
	}
	return &appsv1.Deployment{ObjectMeta: meta, Spec: appsv1.DeploymentSpec{
		Replicas: ptr.To[int32](1), Selector: selector, Template: podTemplate(ns, w)}}
}

// exporterObjects are what the exporters' namespace holds besides the workloads: their
// ServiceAccount, allowed to review tokens and access (the proxy's SubjectAccessReviews).
func exporterObjects(ns string) []client.Object {
	return []client.Object{
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: exporterSA}},
		&rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: ns + "-" + exporterSA + "-auth-delegator"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:auth-delegator"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: exporterSA}},
		},
	}
}
