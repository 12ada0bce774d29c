package webhook

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// TestDecideNamesWhatDecided: the verdict, and the label or annotation that gave it, which check
// prints as DECIDED-BY.
func TestDecideNamesWhatDecided(t *testing.T) {
	enabled := map[string]string{inject.LabelInject: inject.NamespaceInjectEnabled}
	for _, tc := range []struct {
		name        string
		labels      map[string]string
		annotations map[string]string
		namespace   map[string]string
		verdict     Verdict
		by          string
		byNamespace bool
		wantErr     bool
	}{
		{name: "nothing asks", verdict: VerdictSkip},
		{name: "namespace label", namespace: enabled, verdict: VerdictInject, by: "label rbac-proxy.io/inject=enabled", byNamespace: true},
		{name: "pod label", labels: map[string]string{inject.LabelInject: "true"}, verdict: VerdictInject, by: "label rbac-proxy.io/inject=true"},
		{name: "pod annotation", annotations: map[string]string{inject.AnnotationInject: "true"}, verdict: VerdictInject, by: "annotation rbac-proxy.io/inject=true"},
		{name: "opt out wins over the namespace", annotations: map[string]string{inject.AnnotationInject: "false"}, namespace: enabled, verdict: VerdictSkip, by: "annotation rbac-proxy.io/inject=false"},
		{name: "label and annotation agree", labels: map[string]string{inject.LabelInject: "true"}, annotations: map[string]string{inject.AnnotationInject: "true"}, verdict: VerdictInject, by: "label rbac-proxy.io/inject=true"},
		{name: "they disagree", labels: map[string]string{inject.LabelInject: "true"}, annotations: map[string]string{inject.AnnotationInject: "false"}, wantErr: true},
		{name: "bad value", annotations: map[string]string{inject.AnnotationInject: "yes"}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Labels: tc.labels, Annotations: tc.annotations}}
			d, err := Decide(pod, tc.namespace)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, want error %v", err, tc.wantErr)
			}
			if d.Verdict != Verdict("") && tc.wantErr || !tc.wantErr && (d.Verdict != tc.verdict || d.By != tc.by || d.ByNamespace != tc.byNamespace) {
				t.Errorf("got %+v, want verdict %s by %q (namespace %v)", d, tc.verdict, tc.by, tc.byNamespace)
			}
		})
	}
}
