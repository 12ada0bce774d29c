package check

import (
	"slices"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// chartWebhooks are the chart's two webhooks, leaving out excluded by name.
func chartWebhooks(excluded ...string) []admissionregistrationv1.MutatingWebhookConfiguration {
	byName := metav1.LabelSelectorRequirement{Key: namespaceNameLabel, Operator: metav1.LabelSelectorOpNotIn, Values: excluded}
	inject := func(op metav1.LabelSelectorOperator) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: inject.LabelInject, Operator: op, Values: []string{inject.NamespaceInjectEnabled}}, byName,
		}}
	}
	return []admissionregistrationv1.MutatingWebhookConfiguration{
		{ObjectMeta: metav1.ObjectMeta{Name: "other"}, Webhooks: []admissionregistrationv1.MutatingWebhook{{Name: "sidecar.istio.io"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "rbac-proxy-injector"}, Webhooks: []admissionregistrationv1.MutatingWebhook{
			{Name: "namespace.inject.rbac-proxy.io", NamespaceSelector: inject(metav1.LabelSelectorOpIn)},
			{Name: "pod.inject.rbac-proxy.io", NamespaceSelector: inject(metav1.LabelSelectorOpNotIn)},
		}},
	}
}

// TestExcludedNamespaces: the namespaces every webhook of the injector leaves out by name.
func TestExcludedNamespaces(t *testing.T) {
	namespaces := []string{"gpu", "kube-system", "rbac-proxy", "team-a"}
	for _, tc := range []struct {
		name    string
		configs []admissionregistrationv1.MutatingWebhookConfiguration
		want    []string
	}{
		{"the chart's", chartWebhooks("kube-system", "rbac-proxy"), []string{"kube-system", "rbac-proxy"}},
		{"no webhook of the injector", chartWebhooks("kube-system")[:1], nil},
		{"one webhook serving every namespace", append(chartWebhooks("kube-system"), admissionregistrationv1.MutatingWebhookConfiguration{
			Webhooks: []admissionregistrationv1.MutatingWebhook{{Name: "all.inject.rbac-proxy.io"}}}), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := excludedNamespaces(tc.configs, namespaces); !slices.Equal(got, tc.want) {
				t.Errorf("excluded %q, want %q", got, tc.want)
			}
		})
	}
}

// TestExcludedNamespace: in a namespace the webhook leaves out, nothing is NotInjected (it would
// never be), a port named metrics is the operator's choice, and a known exporter is still
// reported, with a fix that does not ask for what the webhook will not do.
func TestExcludedNamespace(t *testing.T) {
	d := testDefaults(t)
	app, appRS := deployment("app", appTemplate(nil, nil))
	tmpl := appTemplate(nil, nil)
	tmpl.Spec.Containers[0].Image = "nvcr.io/nvidia/k8s/dcgm-exporter:3.3.5"
	dcgm, dcgmRS := deployment("dcgm", tmpl)
	s := snapshotOf(namespace(enabledNS), app, appRS, podOf(t, d, app, appRS, "a", false, ""), dcgm, dcgmRS, podOf(t, d, dcgm, dcgmRS, "a", false, ""))
	s.Excluded = []string{testNS}
	r := run(t, d, s)
	if got := findingKeys(r); !slices.Equal(got, []string{"UnprotectedExporter Deployment/dcgm"}) {
		t.Fatalf("findings %v, want only dcgm's UnprotectedExporter", got)
	}
	if fix := r.Findings[0].Fix; fix != "run it in a namespace the injector's webhook serves: it leaves gpu out" {
		t.Errorf("fix %q", fix)
	}
	for _, w := range r.Workloads {
		if w.Injection.State != StateSkipped || w.Policy != nil {
			t.Errorf("%s: %+v, want skipped without a policy", w.Name, w.Injection)
		}
	}
}

// TestGatherExcluded: Gather reads the webhook configurations for the namespaces left out.
func TestGatherExcluded(t *testing.T) {
	webhooks := chartWebhooks("kube-system", testNS)
	c := refusing(t, func(any, string) error { return nil }, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testNS}}, &webhooks[1])
	snap, err := Gather(t.Context(), c, testDefaults(t), Scope{Namespaces: []string{testNS}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(snap.Excluded, []string{testNS}) {
		t.Errorf("excluded %q, want [%s]", snap.Excluded, testNS)
	}
}
