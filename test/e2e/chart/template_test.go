package chart

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
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
		"defaults":   nil,
		"own issuer": {"selfSignedCA.enabled=false", "defaultIssuer.kind=Issuer", "defaultIssuer.name=my-ca", "webhook.failurePolicy=Ignore", "proxy.sidecarMode=container", "metrics.serviceMonitor.enabled=true"},
		"locked down": {"allowedIssuers={Issuer/*}", "allowedDNSSuffixes={gpu.corp.example}", "scrapersCA.namespace=monitoring",
			"webhook.clientAuth.enabled=true", "webhook.clientAuth.caConfigMap=apiserver-client-ca", "webhook.clientAuth.names={kube-apiserver}",
			"networkPolicy.enabled=true", "networkPolicy.webhookFrom[0].ipBlock.cidr=10.0.0.0/24"},
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
		"Issuer/rbac-proxy-rbac-proxy-injector-scrapers-root", "Certificate/rbac-proxy-rbac-proxy-injector-scrapers-ca",
		"Issuer/rbac-proxy-rbac-proxy-injector-scrapers", "Role/rbac-proxy-rbac-proxy-injector-scrapers-ca",
		"RoleBinding/rbac-proxy-rbac-proxy-injector-scrapers-ca",
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
		if *w.FailurePolicy != admissionregistrationv1.Fail || *w.SideEffects != admissionregistrationv1.SideEffectClassNone ||
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

const fullname = "rbac-proxy-rbac-proxy-injector"

// renderFails runs helm template with the given values, which must fail; it returns helm's own
// message, without the command line (which repeats the values).
func renderFails(t *testing.T, sets ...string) string {
	t.Helper()
	args := []string{"template", "rbac-proxy", chartDir, "--namespace", "rbac-proxy"}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	_, err := framework.RunHelm(t.Context(), "", args...)
	if err == nil {
		t.Fatalf("--set %v rendered, want an error", sets)
	}
	msg := err.Error()
	if _, after, ok := strings.Cut(msg, "]: "); ok {
		msg = after
	}
	return msg
}

// serveArgs are the webhook container's arguments.
func serveArgs(t *testing.T, objs map[string]*unstructured.Unstructured) []string {
	t.Helper()
	dep := convert[appsv1.Deployment](t, objs["Deployment/"+fullname])
	return dep.Spec.Template.Spec.Containers[0].Args
}

func argsWith(args []string, prefix string) []string {
	var out []string
	for _, a := range args {
		if strings.HasPrefix(a, prefix) {
			out = append(out, a)
		}
	}
	return out
}

// The scrapers' CA is reachable only through Issuers of its own namespace: never a
// ClusterIssuer, so only who may create Certificates there can get a client certificate the
// proxies accept. The serving CA is not it.
func TestTemplateScrapersCA(t *testing.T) {
	for _, tc := range []struct {
		name, namespace string
		sets            []string
	}{
		{"release namespace", "rbac-proxy", nil},
		{"own namespace", "monitoring", []string{"scrapersCA.namespace=monitoring"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := render(t, tc.sets...)
			for key, u := range objs {
				if u.GetKind() == "ClusterIssuer" && strings.Contains(u.GetName(), "scrapers") {
					t.Errorf("%s: the scrapers' CA must never be a ClusterIssuer", key)
				}
			}
			root := objs["Issuer/"+fullname+"-scrapers-root"]
			ca := objs["Certificate/"+fullname+"-scrapers-ca"]
			issuer := objs["Issuer/"+fullname+"-scrapers"]
			for key, u := range map[string]*unstructured.Unstructured{"self-signed Issuer": root, "CA Certificate": ca, "CA Issuer": issuer} {
				if u == nil {
					t.Fatalf("the scrapers' %s is not rendered", key)
				}
				if u.GetNamespace() != tc.namespace {
					t.Errorf("the scrapers' %s is in namespace %q, want %q", key, u.GetNamespace(), tc.namespace)
				}
			}
			if _, ok, _ := unstructured.NestedMap(root.Object, "spec", "selfSigned"); !ok {
				t.Error("the scrapers' root Issuer is not self-signed")
			}
			isCA, _, _ := unstructured.NestedBool(ca.Object, "spec", "isCA")
			caKind, _, _ := unstructured.NestedString(ca.Object, "spec", "issuerRef", "kind")
			caIssuer, _, _ := unstructured.NestedString(ca.Object, "spec", "issuerRef", "name")
			secret, _, _ := unstructured.NestedString(ca.Object, "spec", "secretName")
			if !isCA || caKind != "Issuer" || caIssuer != root.GetName() {
				t.Errorf("the scrapers' CA Certificate: isCA=%v, issuerRef %s/%s; want isCA from Issuer/%s", isCA, caKind, caIssuer, root.GetName())
			}
			if got, _, _ := unstructured.NestedString(issuer.Object, "spec", "ca", "secretName"); got != secret || secret == "" {
				t.Errorf("the scrapers' CA Issuer signs with Secret %q, want the CA Certificate's %q", got, secret)
			}
			if rootCA, _, _ := unstructured.NestedString(objs["Certificate/"+fullname+"-root-ca"].Object, "spec", "secretName"); rootCA == secret {
				t.Errorf("the scrapers' CA is the serving CA (%s)", secret)
			}

			want := "--scrapers-ca-secret=" + tc.namespace + "/" + secret
			if got := argsWith(serveArgs(t, objs), "--scrapers-ca-secret="); len(got) != 1 || got[0] != want {
				t.Errorf("serve args %v, want %s", got, want)
			}
			role := convert[rbacv1.Role](t, objs["Role/"+fullname+"-scrapers-ca"])
			if role.Namespace != tc.namespace || len(role.Rules) != 1 || !reflect.DeepEqual(role.Rules[0], rbacv1.PolicyRule{
				APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{secret}, Verbs: []string{"get"},
			}) {
				t.Errorf("Role %s/%s: %+v; want get on secrets/%s only", role.Namespace, role.Name, role.Rules, secret)
			}
			binding := convert[rbacv1.RoleBinding](t, objs["RoleBinding/"+fullname+"-scrapers-ca"])
			if binding.Namespace != tc.namespace || binding.RoleRef.Name != role.Name || len(binding.Subjects) != 1 ||
				binding.Subjects[0].Name != fullname || binding.Subjects[0].Namespace != "rbac-proxy" {
				t.Errorf("RoleBinding %s/%s: %+v %+v", binding.Namespace, binding.Name, binding.RoleRef, binding.Subjects)
			}
		})
	}
}

func TestTemplateScrapersCAOwnOrNone(t *testing.T) {
	objs := render(t, "scrapersCA.enabled=false", "scrapersCA.existingSecret=corp-scrapers-ca", "scrapersCA.namespace=monitoring")
	if objs["Issuer/"+fullname+"-scrapers"] != nil || objs["Certificate/"+fullname+"-scrapers-ca"] != nil {
		t.Error("the chart's scrapers' CA is rendered although scrapersCA.enabled is false")
	}
	if got := argsWith(serveArgs(t, objs), "--scrapers-ca-secret="); len(got) != 1 || got[0] != "--scrapers-ca-secret=monitoring/corp-scrapers-ca" {
		t.Errorf("serve args %v, want --scrapers-ca-secret=monitoring/corp-scrapers-ca", got)
	}
	role := convert[rbacv1.Role](t, objs["Role/"+fullname+"-scrapers-ca"])
	if role.Namespace != "monitoring" || len(role.Rules) != 1 || strings.Join(role.Rules[0].ResourceNames, ",") != "corp-scrapers-ca" {
		t.Errorf("Role %s/%s: %+v", role.Namespace, role.Name, role.Rules)
	}

	objs = render(t, "scrapersCA.enabled=false")
	if got := argsWith(serveArgs(t, objs), "--scrapers-ca-secret"); len(got) != 0 {
		t.Errorf("serve args %v without a scrapers' CA", got)
	}
	if objs["Role/"+fullname+"-scrapers-ca"] != nil {
		t.Error("a Role to read a scrapers' CA Secret although there is none")
	}

	if msg := renderFails(t, "scrapersCA.existingSecret=corp-scrapers-ca"); !strings.Contains(msg, "scrapersCA.existingSecret") || !strings.Contains(msg, "scrapersCA.enabled=false") {
		t.Errorf("both the chart's and an own scrapers' CA: %s", msg)
	}
}

// Admission has no side effects; the controller needs the rules below.
func TestTemplateSideEffectsAndRBAC(t *testing.T) {
	objs := render(t)
	mwc := convert[admissionregistrationv1.MutatingWebhookConfiguration](t, objs["MutatingWebhookConfiguration/"+fullname])
	for _, w := range mwc.Webhooks {
		if w.SideEffects == nil || *w.SideEffects != admissionregistrationv1.SideEffectClassNone {
			t.Errorf("webhook %s: sideEffects %v, want None", w.Name, w.SideEffects)
		}
	}
	role := convert[rbacv1.ClusterRole](t, objs["ClusterRole/"+fullname])
	allowed := func(group, resource, verb, name string) bool {
		for _, r := range role.Rules {
			if slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) && slices.Contains(r.Verbs, verb) &&
				(len(r.ResourceNames) == 0 || slices.Contains(r.ResourceNames, name)) {
				return true
			}
		}
		return false
	}
	for _, want := range []struct {
		group, resource string
		verbs           []string
	}{
		{"", "namespaces", []string{"get", "list", "watch"}},
		{"", "pods", []string{"get", "list", "watch"}},
		{"apps", "replicasets", []string{"get", "list", "watch"}},
		{"apps", "deployments", []string{"get"}},
		{"apps", "daemonsets", []string{"get"}},
		{"apps", "statefulsets", []string{"get"}},
		{"batch", "jobs", []string{"get", "list", "watch"}},
		{"batch", "cronjobs", []string{"get"}},
		{"cert-manager.io", "certificates", []string{"get", "list", "watch", "create", "update"}},
		{"", "configmaps", []string{"get", "list", "watch", "create"}},
		{"", "events", []string{"create", "patch"}},
		{"events.k8s.io", "events", []string{"create", "patch"}},
		{"authorization.k8s.io", "subjectaccessreviews", []string{"create"}},
	} {
		for _, verb := range want.verbs {
			if !allowed(want.group, want.resource, verb, "") {
				t.Errorf("the ClusterRole does not allow %s on %s.%s", verb, want.resource, want.group)
			}
		}
	}
	if !allowed("", "configmaps", "update", "rbac-proxy-scrapers-ca") || allowed("", "configmaps", "update", "aws-auth") {
		t.Error("ConfigMap updates must be allowed for rbac-proxy-scrapers-ca and no other")
	}
	for _, r := range role.Rules {
		if slices.Contains(r.Resources, "secrets") || slices.Contains(r.Verbs, "*") || slices.Contains(r.Resources, "*") {
			t.Errorf("the ClusterRole grants %+v: Secrets are read through the namespaced Role only", r)
		}
	}
}

func TestTemplateAllowLists(t *testing.T) {
	args := serveArgs(t, render(t))
	if got := append(argsWith(args, "--allowed-"), argsWith(args, "--webhook-client")...); len(got) != 0 {
		t.Errorf("default serve args carry %v", got)
	}
	args = serveArgs(t, render(t, "allowedIssuers={Issuer/*,ClusterIssuer/corp-ca}", "allowedDNSSuffixes={gpu.corp.example}"))
	for _, want := range []string{"--allowed-issuers=Issuer/*", "--allowed-issuers=ClusterIssuer/corp-ca", "--allowed-dns-suffixes=gpu.corp.example"} {
		if !slices.Contains(args, want) {
			t.Errorf("serve args %v lack %s", args, want)
		}
	}
}

func TestTemplateNetworkPolicy(t *testing.T) {
	if objs := render(t); objs["NetworkPolicy/"+fullname] != nil {
		t.Error("a NetworkPolicy is rendered although networkPolicy.enabled is false")
	}
	objs := render(t, "networkPolicy.enabled=true", "networkPolicy.webhookFrom[0].ipBlock.cidr=10.0.0.0/24")
	np := convert[networkingv1.NetworkPolicy](t, objs["NetworkPolicy/"+fullname])
	if np.Namespace != "rbac-proxy" || np.Spec.PodSelector.MatchLabels["app.kubernetes.io/instance"] != "rbac-proxy" ||
		!reflect.DeepEqual(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) {
		t.Errorf("NetworkPolicy %s/%s: pods %v, types %v", np.Namespace, np.Name, np.Spec.PodSelector.MatchLabels, np.Spec.PolicyTypes)
	}
	if len(np.Spec.Ingress) != 2 {
		t.Fatalf("%d ingress rules, want the webhook's and the metrics': %+v", len(np.Spec.Ingress), np.Spec.Ingress)
	}
	hook, metrics := np.Spec.Ingress[0], np.Spec.Ingress[1]
	if len(hook.Ports) != 1 || hook.Ports[0].Port.String() != "webhook" || len(hook.From) != 1 || hook.From[0].IPBlock == nil || hook.From[0].IPBlock.CIDR != "10.0.0.0/24" {
		t.Errorf("webhook rule %+v, want port webhook from 10.0.0.0/24", hook)
	}
	if len(metrics.Ports) != 1 || metrics.Ports[0].Port.String() != "metrics" || len(metrics.From) != 1 || metrics.From[0].NamespaceSelector == nil ||
		metrics.From[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "monitoring" {
		t.Errorf("metrics rule %+v, want port metrics from namespace monitoring", metrics)
	}

	objs = render(t, "networkPolicy.enabled=true", "networkPolicy.webhookFrom[0].ipBlock.cidr=10.0.0.0/24", "networkPolicy.metricsNamespaceSelector=null")
	if np := convert[networkingv1.NetworkPolicy](t, objs["NetworkPolicy/"+fullname]); len(np.Spec.Ingress) != 1 {
		t.Errorf("without a metrics namespace selector: %d rules, want the webhook's only", len(np.Spec.Ingress))
	}
	// An ingress rule without peers would let everyone in.
	if msg := renderFails(t, "networkPolicy.enabled=true"); !strings.Contains(msg, "networkPolicy.webhookFrom") {
		t.Errorf("a NetworkPolicy without webhook peers: %s", msg)
	}
}

func TestTemplateWebhookClientAuth(t *testing.T) {
	objs := render(t, "webhook.clientAuth.enabled=true", "webhook.clientAuth.caConfigMap=apiserver-client-ca", "webhook.clientAuth.names={kube-apiserver}")
	dep := convert[appsv1.Deployment](t, objs["Deployment/"+fullname])
	c := dep.Spec.Template.Spec.Containers[0]
	for _, want := range []string{"--cert-dir=/etc/rbac-proxy-injector/tls", "--webhook-client-ca-name=client-ca.crt", "--webhook-client-names=kube-apiserver"} {
		if !slices.Contains(c.Args, want) {
			t.Errorf("serve args %v lack %s", c.Args, want)
		}
	}
	var tls *corev1.Volume
	for i, v := range dep.Spec.Template.Spec.Volumes {
		if v.Name == "tls" {
			tls = &dep.Spec.Template.Spec.Volumes[i]
		}
	}
	if tls == nil || tls.Projected == nil || len(tls.Projected.Sources) != 2 {
		t.Fatalf("the cert dir is not a projected volume of the serving Secret and the CA ConfigMap: %+v", tls)
	}
	files := map[string]string{}
	for _, s := range tls.Projected.Sources {
		switch {
		case s.Secret != nil:
			for _, it := range s.Secret.Items {
				files[it.Path] = "secret " + s.Secret.Name + " " + it.Key
			}
		case s.ConfigMap != nil:
			for _, it := range s.ConfigMap.Items {
				files[it.Path] = "configmap " + s.ConfigMap.Name + " " + it.Key
			}
		}
	}
	want := map[string]string{
		"tls.crt":       "secret " + fullname + "-serving-cert tls.crt",
		"tls.key":       "secret " + fullname + "-serving-cert tls.key",
		"client-ca.crt": "configmap apiserver-client-ca ca.crt",
	}
	if !reflect.DeepEqual(files, want) {
		t.Errorf("cert dir files %v, want %v", files, want)
	}

	if msg := renderFails(t, "webhook.clientAuth.enabled=true"); !strings.Contains(msg, "webhook.clientAuth.caConfigMap") {
		t.Errorf("client auth without a CA ConfigMap: %s", msg)
	}
}

// The schema names the value it rejects in helm's own message.
func TestSchemaRejectsBadSecurityValues(t *testing.T) {
	for _, tc := range []struct{ set, field string }{
		{"allowedIssuers={Vault/x}", "allowedIssuers"},
		{"allowedDNSSuffixes={com}", "allowedDNSSuffixes"},
		{"scrapersCA.namespace=Not_A_Namespace", "namespace"},
		{"webhook.clientAuth.caKey=a/b", "caKey"},
		{"networkPolicy.webhookPort=1", "webhookPort"},
	} {
		t.Run(tc.set, func(t *testing.T) {
			if msg := renderFails(t, tc.set); !strings.Contains(msg, tc.field) {
				t.Errorf("error for --set %s does not name %q: %s", tc.set, tc.field, msg)
			}
		})
	}
}
