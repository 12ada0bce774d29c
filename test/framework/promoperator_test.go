package framework

import (
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// On a bare API server, the installed CRDs are those of the release go.mod's typed API names
// (their operator.prometheus.io/version annotation), they serve ServiceMonitors and PodMonitors,
// and their schema (not just their names) is there: an endpoint scheme outside the enum is refused.
func TestInstallPrometheusOperatorCRDs(t *testing.T) {
	ctx := t.Context()
	cp, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cp.Stop(); err != nil {
			t.Error(err)
		}
	})
	// Twice: a suite may call it again (it updates).
	for range 2 {
		if err := cp.InstallPrometheusOperatorCRDs(ctx); err != nil {
			t.Fatal(err)
		}
	}
	version, err := PrometheusOperatorVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var crds apiextensionsv1.CustomResourceDefinitionList
	if err := cp.Client.List(ctx, &crds); err != nil {
		t.Fatal(err)
	}
	installed := map[string]bool{}
	for _, crd := range crds.Items {
		if crd.Spec.Group != monitoringv1.SchemeGroupVersion.Group {
			continue
		}
		installed[crd.Spec.Names.Kind] = true
		if got := crd.Annotations["operator.prometheus.io/version"]; "v"+got != version {
			t.Errorf("CRD %s is of prometheus-operator %q, go.mod requires %s %s", crd.Name, got, monitoringAPIModule, version)
		}
	}
	for _, kind := range []string{monitoringv1.ServiceMonitorsKind, monitoringv1.PodMonitorsKind, monitoringv1.PrometheusesKind} {
		if !installed[kind] {
			t.Errorf("no CRD of kind %s installed; got %v", kind, installed)
		}
	}
	s := runtime.NewScheme()
	if err := monitoringv1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cp.Config, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	sm := func(name, scheme string) *monitoringv1.ServiceMonitor {
		return &monitoringv1.ServiceMonitor{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
			Spec: monitoringv1.ServiceMonitorSpec{
				Selector:  metav1.LabelSelector{MatchLabels: map[string]string{"app": "exporter"}},
				Endpoints: []monitoringv1.Endpoint{{Port: "metrics", Scheme: ptr.To(monitoringv1.Scheme(scheme))}},
			},
		}
	}
	if err := c.Create(ctx, sm("https", "https")); err != nil {
		t.Fatalf("creating a valid ServiceMonitor: %v", err)
	}
	if err := c.Create(ctx, sm("ftp", "ftp")); !apierrors.IsInvalid(err) {
		t.Fatalf("a ServiceMonitor scraping over ftp: got %v, want Invalid", err)
	}
	pm := &monitoringv1.PodMonitor{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "exporter"},
		Spec: monitoringv1.PodMonitorSpec{
			Selector:            metav1.LabelSelector{MatchLabels: map[string]string{"app": "exporter"}},
			PodMetricsEndpoints: []monitoringv1.PodMetricsEndpoint{{Port: ptr.To("metrics")}},
		},
	}
	if err := c.Create(ctx, pm); err != nil {
		t.Fatalf("creating a PodMonitor: %v", err)
	}
}
