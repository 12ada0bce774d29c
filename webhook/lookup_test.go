package webhook

import (
	"context"
	"errors"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

func TestParseWorkloadArg(t *testing.T) {
	for _, tc := range []struct {
		arg, want, err string
	}{
		{arg: "web-0", want: "Pod/web-0"},
		{arg: "pod/web-0", want: "Pod/web-0"},
		{arg: "po/web-0", want: "Pod/web-0"},
		{arg: "deploy/web", want: "Deployment.apps/web"},
		{arg: "Deployments.apps/web", want: "Deployment.apps/web"},
		{arg: "sts/db", want: "StatefulSet.apps/db"},
		{arg: "DaemonSet/dcgm", want: "DaemonSet.apps/dcgm"},
		{arg: "jobs/once", want: "Job.batch/once"},
		{arg: "cj/nightly", want: "CronJob.batch/nightly"},
		{arg: "deployment.batch/web", err: `unknown kind "deployment.batch"`},
		{arg: "replicaset/web-1", err: `unknown kind "replicaset"; allowed: pod, deployment`},
		{arg: "deploy/", err: "want POD or KIND/NAME"},
		{arg: "deploy/a/b", err: "want POD or KIND/NAME"},
		{arg: "", err: "want POD or KIND/NAME"},
	} {
		t.Run(tc.arg, func(t *testing.T) {
			gk, name, err := ParseWorkloadArg(tc.arg)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v %s, %v; want an error with %q", gk, name, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := gk.String() + "/" + name; got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

// TestLookupAndWorkloadPolicy: a workload named on a command line is read as the certificate
// controller reads it, and its policy is the one admission computes for its Pods.
func TestLookupAndWorkloadPolicy(t *testing.T) {
	d, err := testConfig().Compile()
	if err != nil {
		t.Fatal(err)
	}
	tmpl := templateOf(nil)
	skipped := templateOf(nil)
	skipped.Annotations[inject.AnnotationInject] = "false"
	bad := templateOf(map[string]string{inject.AnnotationPortMode: "sideways"})
	deploy := func(name string, tmpl corev1.PodTemplateSpec) *appsv1.Deployment {
		return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: name, UID: types.UID("uid-" + name)}, Spec: appsv1.DeploymentSpec{Template: tmpl}}
	}
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: "web-1", UID: "rs-uid",
		OwnerReferences: []metav1.OwnerReference{controllerRef("apps/v1", "Deployment", "web", "uid-web")}}, Spec: appsv1.ReplicaSetSpec{Template: tmpl}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: "web-1-abc", UID: "pod-uid",
		OwnerReferences: []metav1.OwnerReference{controllerRef("apps/v1", "ReplicaSet", "web-1", "rs-uid")}}}
	api := fake.NewClientBuilder().WithScheme(testScheme()).WithObjects(deploy("web", tmpl), deploy("off", skipped), deploy("bad", bad), rs, pod).Build()
	v := &WorkloadVerifier{API: api}

	for _, tc := range []struct {
		arg string
		// want is the workload Kind/Name, then the verdict; err a substring of the error.
		want, verdict, err string
	}{
		{arg: "deploy/web", want: "Deployment/web", verdict: "inject"},
		{arg: "web-1-abc", want: "Deployment/web", verdict: "inject"},
		{arg: "deploy/off", want: "Deployment/off", verdict: "skip"},
		{arg: "deploy/bad", want: "Deployment/bad", err: "rbac-proxy.io/port-mode"},
		{arg: "deploy/ghost", err: `reading Deployment team/ghost: deployments.apps "ghost" not found`},
		{arg: "pod/ghost", err: `reading Pod team/ghost`},
	} {
		t.Run(tc.arg, func(t *testing.T) {
			gk, name, err := ParseWorkloadArg(tc.arg)
			if err != nil {
				t.Fatal(err)
			}
			sw, err := v.Lookup(context.Background(), testNamespace, gk, name)
			if err == nil {
				if got := sw.Kind + "/" + sw.Name; got != tc.want {
					t.Errorf("workload %s, want %s", got, tc.want)
				}
				var decision Decision
				var p *inject.Policy
				decision, p, err = WorkloadPolicy(sw, testNamespace, d, nil)
				if err == nil {
					if string(decision.Verdict) != tc.verdict || (p != nil) != (decision.Verdict == VerdictInject) {
						t.Errorf("verdict %s, policy %v; want %s", decision.Verdict, p != nil, tc.verdict)
					}
					if p != nil && p.TLS.SecretName != inject.CertificateName(sw.Workload) {
						t.Errorf("serving Secret %s, want the workload's %s", p.TLS.SecretName, inject.CertificateName(sw.Workload))
					}
				}
			}
			if tc.err == "" && err != nil {
				t.Fatal(err)
			}
			if tc.err != "" {
				var pe *inject.PolicyError
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v; want an error with %q", err, tc.err)
				}
				if strings.Contains(tc.err, "rbac-proxy.io/") && !errors.As(err, &pe) {
					t.Errorf("%v is not a *inject.PolicyError", err)
				}
			}
		})
	}
}
