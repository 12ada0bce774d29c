package chart

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/rbac-proxy/rbac-proxy/test/framework"
)

// render runs helm template with the given --set values and returns the objects by "Kind/name".
func render(t *testing.T, sets ...string) map[string]*unstructured.Unstructured {
	t.Helper()
	args := []string{"template", "rbac-proxy", chartDir, "--namespace", "rbac-proxy"}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	out, err := framework.RunHelm(t.Context(), "", args...)
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, out)
}

func decode(t *testing.T, manifests string) map[string]*unstructured.Unstructured {
	t.Helper()
	objs, err := framework.DecodeObjects(manifests)
	if err != nil {
		t.Fatalf("decoding the rendered chart: %v", err)
	}
	return objs
}

// convert turns an unstructured object into a typed one.
func convert[T any](t *testing.T, u *unstructured.Unstructured) *T {
	t.Helper()
	if u == nil {
		t.Fatal("object not rendered")
	}
	b, err := yaml.Marshal(u.Object)
	if err != nil {
		t.Fatal(err)
	}
	var v T
	if err := yaml.UnmarshalStrict(b, &v); err != nil {
		t.Fatalf("%s %s does not decode as %T: %v", u.GetKind(), u.GetName(), v, err)
	}
	return &v
}

func TestHelmLint(t *testing.T) {
	for name, sets := range map[string][]string{
		"defaults":    nil,
		"own issuer":  {"selfSignedCA.enabled=false", "defaultIssuer.kind=Issuer", "defaultIssuer.name=my-ca", "webhook.failurePolicy=Ignore", "proxy.sidecarMode=container", "metrics.serviceMonitor.enabled=true"},
		"development": {"webhook.url=https://localhost:9443/mutate-pods", "webhook.certificate.extraDNSNames={localhost}", "replicaCount=1", "podDisruptionBudget.enabled=false"},
	} {
		t.Run(name, func(t *testing.T) {
			args := []string{"lint", "--strict", chartDir}
			for _, s := range sets {
				args = append(args, "--set", s)
			}
			if out, err := framework.RunHelm(t.Context(), "", args...); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
		})
	}
}

func TestTemplateDefaults(t *testing.T) {
	objs := render(t)
	for _, want := range []string{
		"ServiceAccount/rbac-proxy-rbac-proxy-injector", "Service/rbac-proxy-rbac-proxy-injector",
		"ClusterRole/rbac-proxy-rbac-proxy-injector", "ClusterRoleBinding/rbac-proxy-rbac-proxy-injector",
		"PodDisruptionBudget/rbac-proxy-rbac-proxy-injector", "Issuer/rbac-proxy-rbac-proxy-injector-selfsigned",
		"Certificate/rbac-proxy-rbac-proxy-injector-serving", "ClusterIssuer/rbac-proxy-rbac-proxy-injector-selfsigned-root",
		"Certificate/rbac-proxy-rbac-proxy-injector-root-ca", "ClusterIssuer/rbac-proxy-rbac-proxy-injector-ca",
	} {
		if objs[want] == nil {
			t.Errorf("%s is not rendered", want)
		}
	}
	if objs["ServiceMonitor/rbac-proxy-rbac-proxy-injector"] != nil {
		t.Error("a ServiceMonitor is rendered although metrics.serviceMonitor.enabled is false")
	}

	dep := convert[appsv1.Deployment](t, objs["Deployment/rbac-proxy-rbac-proxy-injector"])
	if *dep.Spec.Replicas != 2 {
		t.Errorf("replicas = %d, want 2", *dep.Spec.Replicas)
	}
	pod := dep.Spec.Template.Spec
	if len(pod.TopologySpreadConstraints) == 0 {
		t.Error("no topology spread constraint")
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if sc == nil || !*sc.ReadOnlyRootFilesystem || !*sc.RunAsNonRoot || *sc.AllowPrivilegeEscalation || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
		t.Errorf("container securityContext is not restricted: %+v", sc)
	}
	if pod.SecurityContext == nil || pod.SecurityContext.SeccompProfile == nil || pod.SecurityContext.SeccompProfile.Type != "RuntimeDefault" {
		t.Error("pod seccompProfile is not RuntimeDefault")
	}
	if c.LivenessProbe == nil || c.ReadinessProbe == nil || c.Resources.Requests.Cpu().IsZero() {
		t.Error("probes or resource requests missing")
	}
	args := strings.Join(c.Args, " ")
	for _, want := range []string{"serve", "--default-issuer=ClusterIssuer/rbac-proxy-rbac-proxy-injector-ca", "--proxy-image=rbac-proxy:0.1.0", "--sidecar-mode=native", "--proxy-port=8443"} {
		if !strings.Contains(args, want) {
			t.Errorf("webhook args %q lack %q", args, want)
		}
	}

	mwc := convert[admissionregistrationv1.MutatingWebhookConfiguration](t, objs["MutatingWebhookConfiguration/rbac-proxy-rbac-proxy-injector"])
	if got := mwc.Annotations["cert-manager.io/inject-ca-from"]; got != "rbac-proxy/rbac-proxy-rbac-proxy-injector-serving" {
		t.Errorf("inject-ca-from = %q", got)
	}
	if len(mwc.Webhooks) != 2 {
		t.Fatalf("%d webhooks, want 2 (labelled namespaces, labelled Pods)", len(mwc.Webhooks))
	}
	for _, w := range mwc.Webhooks {
		if *w.FailurePolicy != admissionregistrationv1.Fail || *w.SideEffects != admissionregistrationv1.SideEffectClassNoneOnDryRun ||
			*w.ReinvocationPolicy != admissionregistrationv1.IfNeededReinvocationPolicy || *w.TimeoutSeconds != 10 || len(w.MatchConditions) == 0 {
			t.Errorf("webhook %s: failurePolicy=%s sideEffects=%s reinvocation=%s timeout=%d matchConditions=%d",
				w.Name, *w.FailurePolicy, *w.SideEffects, *w.ReinvocationPolicy, *w.TimeoutSeconds, len(w.MatchConditions))
		}
		excluded := ""
		for _, e := range w.NamespaceSelector.MatchExpressions {
			if e.Key == "kubernetes.io/metadata.name" {
				excluded = strings.Join(e.Values, ",")
			}
		}
		if excluded != "kube-system,rbac-proxy" {
			t.Errorf("webhook %s excludes namespaces %q, want kube-system,rbac-proxy", w.Name, excluded)
		}
		if w.ClientConfig.Service == nil || w.ClientConfig.Service.Name != "rbac-proxy-rbac-proxy-injector" {
			t.Errorf("webhook %s does not call the Service", w.Name)
		}
	}
}

func TestTemplateNonDefaults(t *testing.T) {
	objs := render(t, "selfSignedCA.enabled=false", "defaultIssuer.kind=Issuer", "defaultIssuer.name=my-ca",
		"webhook.failurePolicy=Ignore", "proxy.sidecarMode=container", "metrics.serviceMonitor.enabled=true",
		"image.repository=myorg/rbac-proxy", "image.tag=v9", "webhook.excludeNamespaces={monitoring}")
	if objs["ClusterIssuer/rbac-proxy-rbac-proxy-injector-ca"] != nil {
		t.Error("the self-signed CA is rendered although selfSignedCA.enabled is false")
	}
	if objs["ServiceMonitor/rbac-proxy-rbac-proxy-injector"] == nil {
		t.Error("no ServiceMonitor although metrics.serviceMonitor.enabled is true")
	}
	dep := convert[appsv1.Deployment](t, objs["Deployment/rbac-proxy-rbac-proxy-injector"])
	c := dep.Spec.Template.Spec.Containers[0]
	args := strings.Join(c.Args, " ")
	for _, want := range []string{"--default-issuer=Issuer/my-ca", "--sidecar-mode=container", "--proxy-image=myorg/rbac-proxy:v9"} {
		if !strings.Contains(args, want) {
			t.Errorf("webhook args %q lack %q", args, want)
		}
	}
	if c.Image != "myorg/rbac-proxy:v9" {
		t.Errorf("image = %q", c.Image)
	}
	mwc := convert[admissionregistrationv1.MutatingWebhookConfiguration](t, objs["MutatingWebhookConfiguration/rbac-proxy-rbac-proxy-injector"])
	for _, w := range mwc.Webhooks {
		if *w.FailurePolicy != admissionregistrationv1.Ignore {
			t.Errorf("webhook %s failurePolicy = %s, want Ignore", w.Name, *w.FailurePolicy)
		}
		if s := w.NamespaceSelector.String(); !strings.Contains(s, "monitoring") {
			t.Errorf("webhook %s does not exclude namespace monitoring: %s", w.Name, s)
		}
	}
}

// values.schema.json rejects bad values with a message naming the field.
func TestSchemaRejectsBadValues(t *testing.T) {
	for _, tc := range []struct{ set, field string }{
		{"webhook.failurePolicy=Sometimes", "failurePolicy"},
		{"proxy.sidecarMode=sidecar", "sidecarMode"},
		{"proxy.port=70000", "port"},
		{"webhook.timeoutSeconds=60", "timeoutSeconds"},
		{"defaultIssuer.kind=Vault", "kind"},
		{"webhook.url=http://insecure:9443/", "url"},
		{"proxy.resources.requests.memory=lots", "memory"},
		{"replicaCount=0", "replicaCount"},
		{"unknownValue=1", "unknownValue"},
	} {
		t.Run(tc.set, func(t *testing.T) {
			_, err := framework.RunHelm(t.Context(), "", "template", "rbac-proxy", chartDir, "--set", tc.set)
			if err == nil {
				t.Fatalf("--set %s rendered, want a schema error", tc.set)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("error for --set %s does not name %q: %v", tc.set, tc.field, err)
			}
		})
	}
}

// deploy/ holds the chart rendered with default values (make manifests); it must not drift.
func TestManifestsMatchChart(t *testing.T) {
	root, err := framework.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	want, err := framework.RunHelm(t.Context(), "", "template", "rbac-proxy", chartDir, "--namespace", "rbac-proxy")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(root, "deploy", "rbac-proxy-injector.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(got, []byte(want)) {
		t.Fatal("deploy/rbac-proxy-injector.yaml differs from `helm template` of the chart: run `make manifests`")
	}
}
