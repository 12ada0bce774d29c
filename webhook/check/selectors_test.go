package check

import (
	"context"
	"fmt"
	"testing"

	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// TestMonitorsWorkGrowsWithObjects: PlainHTTPScrape over ~1200 objects (workloads each with
// their Service, ServiceMonitor and Certificate, in four namespaces, a PodMonitor per namespace and a
// ServiceMonitor of every namespace) parses each selector once and matches a number of label
// sets that grows with the objects, not with their pairs; the same for a ServiceMonitor with a
// 2000-term selector. It counts the work, it does not time it.
func TestMonitorsWorkGrowsWithObjects(t *testing.T) {
	d := testDefaults(t)
	for _, tc := range []struct {
		name       string
		workloads  int
		namespaces int
		big        bool
	}{
		{name: "200 workloads, their Services and ServiceMonitors, in 4 namespaces", workloads: 200, namespaces: 4},
		{name: "30 workloads and one ServiceMonitor of 2000 expressions", workloads: 30, namespaces: 1, big: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Snapshot{}
			objects := 0
			for n := range tc.namespaces {
				ns := fmt.Sprintf("ns%d", n)
				s.Namespaces = append(s.Namespaces, Namespace{Name: ns, LabelsKnown: true})
				s.PodMonitors = append(s.PodMonitors, monitoringv1.PodMonitor{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "by-expression"},
					Spec: monitoringv1.PodMonitorSpec{Selector: metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"none"}}}},
						PodMetricsEndpoints: []monitoringv1.PodMetricsEndpoint{{Port: ptr.To("other")}}}})
				objects++
			}
			s.ServiceMonitors = append(s.ServiceMonitors, monitoringv1.ServiceMonitor{ObjectMeta: metav1.ObjectMeta{Namespace: "monitoring", Name: "everywhere"},
				Spec: monitoringv1.ServiceMonitorSpec{NamespaceSelector: monitoringv1.NamespaceSelector{Any: true}, Selector: metav1.LabelSelector{MatchLabels: map[string]string{"team": "none"}}, Endpoints: []monitoringv1.Endpoint{{Port: "metrics"}}}})
			objects++
			if tc.big {
				var exprs []metav1.LabelSelectorRequirement
				for i := range 2000 {
					exprs = append(exprs, metav1.LabelSelectorRequirement{Key: fmt.Sprintf("k%d", i), Operator: metav1.LabelSelectorOpNotIn, Values: []string{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}})
				}
				s.ServiceMonitors = append(s.ServiceMonitors, monitoringv1.ServiceMonitor{ObjectMeta: metav1.ObjectMeta{Namespace: "ns0", Name: "big"},
					Spec: monitoringv1.ServiceMonitorSpec{Selector: metav1.LabelSelector{MatchExpressions: exprs}, Endpoints: []monitoringv1.Endpoint{{Port: "nomatch"}}}})
				objects++
			}
			for i := range tc.workloads {
				ns := fmt.Sprintf("ns%d", i%tc.namespaces)
				name := fmt.Sprintf("w%d", i)
				dep, rs := deployment(name, appTemplate(map[string]string{"tier": "gpu"}, optInAnnotation))
				dep.Namespace, rs.Namespace = ns, ns
				pod := podOf(t, d, dep, rs, "a", true, "")
				pod.Namespace = ns
				s.Deployments = append(s.Deployments, *dep)
				s.ReplicaSets = append(s.ReplicaSets, *rs)
				s.Pods = append(s.Pods, *pod)
				s.Services = append(s.Services, corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": name}},
					Spec: corev1.ServiceSpec{Selector: map[string]string{"app": name}, Ports: []corev1.ServicePort{{Name: "metrics", Port: 9400, TargetPort: intstr.FromString("metrics")}}}})
				sm := serviceMonitor(scrapedCorrectly)
				sm.Namespace, sm.Name, sm.Spec.NamespaceSelector = ns, name, monitoringv1.NamespaceSelector{}
				sm.Spec.Selector.MatchLabels = map[string]string{"app": name}
				s.ServiceMonitors = append(s.ServiceMonitors, *sm)
				cert := certificate(name, cmmeta.ConditionTrue, "Ready")
				cert.Namespace = ns
				s.Certificates = append(s.Certificates, *cert)
				objects += 6
			}
			a := (&Checker{Defaults: d}).analyze(context.Background(), s)
			if n := len(a.report().Findings); n != 0 {
				t.Fatalf("%d findings, want none: %+v", n, a.report().Findings[0])
			}
			selectors := len(s.Services) + len(s.ServiceMonitors) + len(s.PodMonitors)
			w := a.idx.work
			t.Logf("%d objects, %d selectors: %d parses, %d matches", objects, selectors, w.parses, w.matches)
			if w.parses != selectors {
				t.Errorf("%d selectors parsed %d times, want once each", selectors, w.parses)
			}
			if w.matches > 3*objects {
				t.Errorf("%d label sets matched over %d objects, want at most %d", w.matches, objects, 3*objects)
			}
		})
	}
}
