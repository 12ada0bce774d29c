package webhook_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	dto "github.com/prometheus/client_model/go"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/rbac-proxy/rbac-proxy/internal/testpki"
	"github.com/rbac-proxy/rbac-proxy/test/framework"
	"github.com/rbac-proxy/rbac-proxy/webhook"
	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

func labelledNamespace(t *testing.T, prefix string) string {
	t.Helper()
	ns, err := cp.CreateNamespace(t.Context(), prefix, map[string]string{enabledLabel: inject.NamespaceInjectEnabled})
	if err != nil {
		t.Fatal(err)
	}
	if err := waitDefaultServiceAccount(t.Context(), ns); err != nil {
		t.Fatal(err)
	}
	return ns
}

func plainNamespace(t *testing.T, prefix string) string {
	t.Helper()
	ns, err := cp.CreateNamespace(t.Context(), prefix, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := waitDefaultServiceAccount(t.Context(), ns); err != nil {
		t.Fatal(err)
	}
	return ns
}

func deployment(ns, name string, replicas int32, annotations map[string]string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: annotations},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:  "app",
					Image: "example.com/" + name + ":1",
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "metrics", ContainerPort: 9090}},
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
						HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromString("metrics")},
					}},
				}}},
			},
		},
	}
}

// waitPods waits until n Pods with label app=name exist and returns them.
func waitPods(t *testing.T, ns, name string, n int) []corev1.Pod {
	t.Helper()
	var pods corev1.PodList
	err := framework.Eventually(t.Context(), 90*time.Second, fmt.Sprintf("%d Pods of %s/%s", n, ns, name), func(ctx context.Context) (bool, error) {
		if err := cp.Client.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{"app": name}); err != nil {
			return false, err
		}
		return len(pods.Items) >= n, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pods.Items
}

// checkInjected checks the parts of an injected Pod that the API server and the controllers must
// have kept: the native sidecar, the port takeover, the TLS volume and the token mount.
func checkInjected(t *testing.T, pod *corev1.Pod, secret string) {
	t.Helper()
	proxy := inject.ProxyContainer(pod)
	if proxy == nil {
		t.Fatalf("Pod %s has no proxy: init %v, containers %v", pod.Name, names(pod.Spec.InitContainers), names(pod.Spec.Containers))
	}
	if proxy.RestartPolicy == nil || *proxy.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Errorf("Pod %s: the proxy is not a native sidecar", pod.Name)
	}
	if proxy.Image != proxyImage {
		t.Errorf("Pod %s: proxy image %q", pod.Name, proxy.Image)
	}
	if len(proxy.Ports) != 1 || proxy.Ports[0].Name != "metrics" || proxy.Ports[0].ContainerPort != webhook.DefaultProxyPort {
		t.Errorf("Pod %s: proxy ports %+v, want metrics:%d", pod.Name, proxy.Ports, webhook.DefaultProxyPort)
	}
	if !slices.Contains(proxy.Args, "--upstream=http://127.0.0.1:9090/") {
		t.Errorf("Pod %s: proxy args %v", pod.Name, proxy.Args)
	}
	app := pod.Spec.Containers[0]
	for _, p := range app.Ports {
		if p.ContainerPort == 9090 && p.Name != "app-metrics" {
			t.Errorf("Pod %s: app port %+v not renamed", pod.Name, p)
		}
	}
	// The app's probe of the protected port goes through the proxy's probe pass-through.
	if pr := app.ReadinessProbe; pr != nil && (pr.HTTPGet.Port != intstr.FromInt32(webhook.DefaultEndpointsPort) || pr.HTTPGet.Scheme != corev1.URISchemeHTTPS || !strings.HasPrefix(pr.HTTPGet.Path, "/probe/9090/")) {
		t.Errorf("Pod %s: app probe %s %v %s, want the pass-through on the endpoints port", pod.Name, pr.HTTPGet.Scheme, pr.HTTPGet.Port, pr.HTTPGet.Path)
	}
	if pod.Annotations[inject.AnnotationStatus] != inject.StatusInjected {
		t.Errorf("Pod %s: no status annotation", pod.Name)
	}
	found := false
	for _, v := range pod.Spec.Volumes {
		if v.Secret != nil && v.Secret.SecretName == secret {
			found = true
		}
	}
	if !found {
		t.Errorf("Pod %s mounts no Secret %s", pod.Name, secret)
	}
	token := false
	for _, m := range proxy.VolumeMounts {
		if m.MountPath == "/var/run/secrets/kubernetes.io/serviceaccount" {
			token = true
		}
		if !m.ReadOnly {
			t.Errorf("Pod %s: proxy mount %s is writable", pod.Name, m.Name)
		}
	}
	if !token {
		t.Errorf("Pod %s: the proxy has no ServiceAccount token", pod.Name)
	}
}

func names(cs []corev1.Container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

// waitSecret waits until cert-manager has issued the Secret and checks its certificate against
// its CA for dnsName.
func waitSecret(t *testing.T, ns, name, dnsName string) {
	t.Helper()
	var secret corev1.Secret
	err := framework.Eventually(t.Context(), 90*time.Second, "Secret "+ns+"/"+name+" issued by cert-manager", func(ctx context.Context) (bool, error) {
		if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &secret); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		return len(secret.Data["tls.crt"]) > 0 && len(secret.Data["tls.key"]) > 0 && len(secret.Data["ca.crt"]) > 0, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := testpki.VerifyServing(secret.Data["tls.crt"], secret.Data["ca.crt"], dnsName); err != nil {
		t.Errorf("the issued certificate does not verify for %s: %v", dnsName, err)
	}
}

// waitCertificate waits for the certificate controller to create the Certificate ns/name.
func waitCertificate(t *testing.T, ns, name string) *cmapi.Certificate {
	t.Helper()
	cert := &cmapi.Certificate{}
	err := framework.Eventually(t.Context(), 30*time.Second, "Certificate "+ns+"/"+name, func(ctx context.Context) (bool, error) {
		err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, cert)
		return err == nil, client.IgnoreNotFound(err)
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, inj.logs.String())
	}
	return cert
}

func managedCertificates(t *testing.T, ns string) []cmapi.Certificate {
	t.Helper()
	var list cmapi.CertificateList
	if err := cp.Client.List(t.Context(), &list, client.InNamespace(ns), client.MatchingLabels{webhook.LabelManagedBy: webhook.ManagedByValue}); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func counter(t *testing.T, outcome webhook.Outcome) float64 {
	t.Helper()
	families, err := inj.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "rbac_proxy_injector_injections_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			if labelValue(m, "outcome") == string(outcome) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// A Deployment in a labelled namespace: kube-controller-manager creates the Pods (three at once,
// through the webhook), they carry the proxy, one Certificate is created for the Deployment and
// cert-manager issues its Secret.
func TestDeploymentInLabelledNamespace(t *testing.T) {
	ctx := t.Context()
	ns := labelledNamespace(t, "deploy")
	injectedBefore := counter(t, webhook.OutcomeInjected)
	d := deployment(ns, "web", 3, nil)
	if err := cp.Client.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	pods := waitPods(t, ns, "web", 3)
	for i := range pods {
		checkInjected(t, &pods[i], "rbac-proxy-deployment-web")
	}

	waitCertificate(t, ns, "rbac-proxy-deployment-web")
	certs := managedCertificates(t, ns)
	if len(certs) != 1 {
		t.Fatalf("%d Certificates in %s, want exactly 1", len(certs), ns)
	}
	cert := certs[0]
	if cert.Name != "rbac-proxy-deployment-web" || cert.Spec.IssuerRef.Name != issuerName || cert.Spec.IssuerRef.Kind != "ClusterIssuer" {
		t.Errorf("Certificate %s issuer %+v", cert.Name, cert.Spec.IssuerRef)
	}
	if len(cert.OwnerReferences) != 1 || cert.OwnerReferences[0].Kind != "Deployment" || cert.OwnerReferences[0].UID != d.UID {
		t.Errorf("Certificate owners %+v, want Deployment web %s", cert.OwnerReferences, d.UID)
	}
	waitSecret(t, ns, "rbac-proxy-deployment-web", "web."+ns+".svc")

	if got := counter(t, webhook.OutcomeInjected) - injectedBefore; got < 3 {
		t.Errorf("injections_total{outcome=injected} grew by %v, want at least 3", got)
	}
}

// Deleting the Deployment lets kube-controller-manager's garbage collector delete the Certificate
// the webhook made it own.
func TestCertificateIsGarbageCollected(t *testing.T) {
	ctx := t.Context()
	ns := labelledNamespace(t, "gc")
	d := deployment(ns, "short-lived", 1, nil)
	if err := cp.Client.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	waitPods(t, ns, "short-lived", 1)
	key := client.ObjectKey{Namespace: ns, Name: "rbac-proxy-deployment-short-lived"}
	waitCertificate(t, ns, key.Name)
	if err := cp.Client.Delete(ctx, d, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil {
		t.Fatal(err)
	}
	err := framework.Eventually(ctx, 90*time.Second, "the garbage collector to delete the Certificate", func(ctx context.Context) (bool, error) {
		err := cp.Client.Get(ctx, key, &cmapi.Certificate{})
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A bad annotation is refused with its message, for a Pod created directly and for the Pods a
// ReplicaSet tries to create.
func TestBadAnnotationIsRefused(t *testing.T) {
	ctx := t.Context()
	ns := labelledNamespace(t, "bad")
	const want = `rbac-proxy.io/authz="rbac": unknown mode; allowed: sar, static`

	pod := simplePod(ns, "bad")
	pod.Annotations = map[string]string{inject.AnnotationAuthz: "rbac"}
	err := cp.Client.Create(ctx, pod)
	if err == nil || !strings.Contains(err.Error(), want) || !apierrors.IsForbidden(err) {
		t.Fatalf("creating a Pod with a bad annotation: %v; want Forbidden with %q", err, want)
	}

	d := deployment(ns, "bad", 1, map[string]string{inject.AnnotationAuthz: "rbac"})
	if err := cp.Client.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	err = framework.Eventually(ctx, 90*time.Second, "the ReplicaSet to report the denial", func(ctx context.Context) (bool, error) {
		var rsList appsv1.ReplicaSetList
		if err := cp.Client.List(ctx, &rsList, client.InNamespace(ns)); err != nil {
			return false, err
		}
		for _, rs := range rsList.Items {
			for _, c := range rs.Status.Conditions {
				if c.Type == appsv1.ReplicaSetReplicaFailure && strings.Contains(c.Message, want) {
					return true, nil
				}
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var pods corev1.PodList
	if err := cp.Client.List(ctx, &pods, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 0 {
		t.Errorf("%d Pods exist despite the denial", len(pods.Items))
	}
}

// A dry-run request is answered with the injected Pod and creates nothing: admission has no side
// effects, and a dry-run Pod is never stored, so the certificate controller never sees it.
func TestDryRunCreatesNoCertificate(t *testing.T) {
	ctx := t.Context()
	ns := labelledNamespace(t, "dry")
	pod := simplePod(ns, "dry-run")
	if err := cp.Client.Create(ctx, pod, client.DryRunAll); err != nil {
		t.Fatal(err)
	}
	if inject.ProxyContainer(pod) == nil {
		t.Fatal("the dry-run answer has no proxy")
	}
	// A real Pod created after it gets its Certificate: by then the controller has had the time
	// to act on the dry-run Pod too, had it ever been stored.
	real := simplePod(ns, "real")
	if err := cp.Client.Create(ctx, real); err != nil {
		t.Fatal(err)
	}
	waitCertificate(t, ns, "rbac-proxy-pod-real")
	err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "rbac-proxy-pod-dry-run"}, &cmapi.Certificate{})
	if !apierrors.IsNotFound(err) {
		t.Fatalf("Certificate after dry-run: %v, want NotFound", err)
	}
	if n := len(managedCertificates(t, ns)); n != 1 {
		t.Fatalf("%d Certificates, want only the real Pod's", n)
	}
}

// Opted-out Pods and Pods in unlabelled namespaces are untouched; a Pod label opts in anywhere the
// webhook serves.
func TestOptOutAndUnlabelledNamespace(t *testing.T) {
	ctx := t.Context()
	labelled := labelledNamespace(t, "optout")
	plain := plainNamespace(t, "plain")

	byAnnotation := simplePod(labelled, "by-annotation")
	byAnnotation.Annotations = map[string]string{inject.AnnotationInject: "false"}
	byLabel := simplePod(labelled, "by-label")
	byLabel.Labels[inject.LabelInject] = "false"
	unlabelled := simplePod(plain, "plain")
	optIn := simplePod(plain, "opt-in")
	optIn.Labels[inject.LabelInject] = "true"

	for _, pod := range []*corev1.Pod{byAnnotation, byLabel, unlabelled, optIn} {
		if err := cp.Client.Create(ctx, pod); err != nil {
			t.Fatalf("creating %s/%s: %v", pod.Namespace, pod.Name, err)
		}
	}
	for _, pod := range []*corev1.Pod{byAnnotation, byLabel, unlabelled} {
		if inject.ProxyContainer(pod) != nil || len(pod.Spec.InitContainers) != 0 || pod.Annotations[inject.AnnotationStatus] != "" || pod.Spec.Containers[0].Ports[0].Name != "metrics" {
			t.Errorf("Pod %s/%s was changed: %+v", pod.Namespace, pod.Name, pod.Spec)
		}
	}
	checkInjected(t, optIn, "rbac-proxy-pod-opt-in")
	// The controller is running (the opted-in Pod got its Certificate) and made none for the rest.
	waitCertificate(t, plain, "rbac-proxy-pod-opt-in")
	if n := len(managedCertificates(t, labelled)); n != 0 {
		t.Errorf("%d Certificates for opted-out Pods", n)
	}
}

// warningCollector records the warnings the API server passes on from the webhook.
type warningCollector struct {
	mu       sync.Mutex
	warnings []string
}

func (w *warningCollector) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.warnings = append(w.warnings, text)
}

func (w *warningCollector) all() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.warnings, "\n")
}

// The webhook warns when the Pod's ServiceAccount lacks system:auth-delegator, and not when it
// has it.
func TestServiceAccountWarning(t *testing.T) {
	ctx := t.Context()
	ns := labelledNamespace(t, "warn")
	for _, sa := range []string{"lonely", "trusted"} {
		if err := cp.Client.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: sa}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := cp.Client.Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "auth-delegator-" + ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:auth-delegator"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "trusted"}},
	}); err != nil {
		t.Fatal(err)
	}

	create := func(name, sa string) string {
		warnings := &warningCollector{}
		cfg := rest.CopyConfig(cp.Config)
		cfg.WarningHandler = warnings
		c, err := client.New(cfg, client.Options{Scheme: cp.Client.Scheme()})
		if err != nil {
			t.Fatal(err)
		}
		pod := simplePod(ns, name)
		pod.Spec.ServiceAccountName = sa
		if err := c.Create(ctx, pod); err != nil {
			t.Fatal(err)
		}
		return warnings.all()
	}
	lonely := create("lonely", "lonely")
	if !strings.Contains(lonely, "ServiceAccount "+ns+"/lonely cannot create tokenreviews.authentication.k8s.io, subjectaccessreviews.authorization.k8s.io") ||
		!strings.Contains(lonely, "system:auth-delegator") {
		t.Errorf("warnings for the ServiceAccount without auth-delegator:\n%s", lonely)
	}
	if !strings.Contains(lonely, "the app still listens on port 9090") {
		t.Errorf("no warning about the app's own port:\n%s", lonely)
	}
	trusted := create("trusted", "trusted")
	if strings.Contains(trusted, "cannot create") {
		t.Errorf("warning for a ServiceAccount bound to auth-delegator:\n%s", trusted)
	}
}
