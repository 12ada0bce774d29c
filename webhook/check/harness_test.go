package check

import (
	"context"
	"testing"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/rbac-proxy/rbac-proxy/webhook"
	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

const (
	testNS    = "gpu"
	testImage = "registry.example/rbac-proxy:v1"
)

// testDefaults are the injector's settings of the tests: a default issuer, so that a template
// that opts in has a valid policy.
func testDefaults(t *testing.T) *inject.Defaults {
	t.Helper()
	cfg := webhook.DefaultConfig(testImage)
	cfg.DefaultIssuer = "ClusterIssuer/serving"
	d, err := cfg.Compile()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// appTemplate is a template with one container serving metrics on port 9400 named metrics.
func appTemplate(labels, annotations map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: annotations},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: "registry.example/team/app:1",
			Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: 9400, Protocol: corev1.ProtocolTCP}},
		}}},
	}
}

var optInAnnotation = map[string]string{inject.AnnotationInject: "true"}

// deployment is a Deployment of the template, with its ReplicaSet.
func deployment(name string, tmpl corev1.PodTemplateSpec) (*appsv1.Deployment, *appsv1.ReplicaSet) {
	if tmpl.Labels == nil {
		tmpl.Labels = map[string]string{}
	}
	tmpl.Labels["app"] = name
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: name, UID: types.UID("uid-deploy-" + name)},
		Spec:       appsv1.DeploymentSpec{Replicas: ptr.To[int32](1), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}}, Template: tmpl},
	}
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: name + "-7d4b9c8f6", UID: types.UID("uid-rs-" + name),
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: name, UID: d.UID, Controller: ptr.To(true)}}},
		Spec: appsv1.ReplicaSetSpec{Template: tmpl},
	}
	return d, rs
}

// podOf is a Pod of the ReplicaSet, injected by the webhook's own policy and render when
// injected is set (with image, when not empty, as its proxy's).
func podOf(t *testing.T, d *inject.Defaults, dep *appsv1.Deployment, rs *appsv1.ReplicaSet, suffix string, injected bool, image string) *corev1.Pod {
	t.Helper()
	tmpl := rs.Spec.Template.DeepCopy()
	pod := &corev1.Pod{ObjectMeta: tmpl.ObjectMeta, Spec: tmpl.Spec}
	pod.Namespace, pod.Name, pod.UID = testNS, rs.Name+"-"+suffix, types.UID("uid-pod-"+rs.Name+suffix)
	pod.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: ptr.To(true)}}
	if injected {
		p, err := webhook.PolicyFor(pod, inject.PolicyInput{Defaults: d, Namespace: testNS, Workload: inject.Workload{APIVersion: "apps/v1", Kind: "Deployment", Name: dep.Name, UID: dep.UID}})
		if err != nil {
			t.Fatal(err)
		}
		if image != "" {
			p.Image = image
		}
		inject.Render(pod, p)
	}
	return pod
}

func namespace(labels map[string]string) Namespace {
	return Namespace{Name: testNS, Labels: labels, LabelsKnown: true}
}

var enabledNS = map[string]string{inject.LabelInject: inject.NamespaceInjectEnabled}

// snapshotOf is a snapshot of namespace testNS holding the objects.
func snapshotOf(ns Namespace, objs ...any) *Snapshot {
	s := &Snapshot{Scope: Scope{Namespaces: []string{testNS}}, Namespaces: []Namespace{ns}}
	for _, o := range objs {
		switch o := o.(type) {
		case *appsv1.Deployment:
			s.Deployments = append(s.Deployments, *o)
		case *appsv1.ReplicaSet:
			s.ReplicaSets = append(s.ReplicaSets, *o)
		case *corev1.Pod:
			s.Pods = append(s.Pods, *o)
		case *corev1.Service:
			s.Services = append(s.Services, *o)
		case *cmapi.Certificate:
			s.Certificates = append(s.Certificates, *o)
		case *monitoringv1.ServiceMonitor:
			s.ServiceMonitors = append(s.ServiceMonitors, *o)
		case *monitoringv1.PodMonitor:
			s.PodMonitors = append(s.PodMonitors, *o)
		default:
			panic("snapshotOf: unknown object")
		}
	}
	return s
}

// run checks the snapshot; every SubjectAccessReview is allowed.
func run(t *testing.T, d *inject.Defaults, s *Snapshot) *Report {
	t.Helper()
	return (&Checker{Defaults: d, Reviews: reviews(func(authorizationv1.SubjectAccessReviewSpec) (bool, error) { return true, nil })}).Check(context.Background(), s)
}

// reviews answers SubjectAccessReviews with allow, as the API server would.
func reviews(allow func(authorizationv1.SubjectAccessReviewSpec) (bool, error)) client.Writer {
	return fake.NewClientBuilder().WithInterceptorFuncs(interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			sar, ok := obj.(*authorizationv1.SubjectAccessReview)
			if !ok {
				return c.Create(ctx, obj, opts...)
			}
			allowed, err := allow(sar.Spec)
			sar.Status.Allowed = allowed
			return err
		},
	}).Build()
}

// codes lists the findings as CODE OBJECT-KIND/NAME.
func findingKeys(r *Report) []string {
	out := []string{}
	for _, f := range r.Findings {
		out = append(out, string(f.Code)+" "+f.Object.Kind+"/"+f.Object.Name)
	}
	return out
}

// certificate is the Certificate of a Deployment, Ready or not.
func certificate(deployment string, ready cmmeta.ConditionStatus, reason string) *cmapi.Certificate {
	c := &cmapi.Certificate{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "rbac-proxy-deployment-" + deployment}}
	if ready != "" {
		c.Status.Conditions = []cmapi.CertificateCondition{{Type: cmapi.CertificateConditionReady, Status: ready, Reason: reason, Message: "details"}}
	}
	return c
}
