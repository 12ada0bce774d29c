package check

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// refusing is a fake API server that holds objs and answers reads with fail's error when it
// returns one.
func refusing(t *testing.T, fail func(obj any, namespace string) error, objs ...client.Object) client.Reader {
	t.Helper()
	s, err := NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	return fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).WithInterceptorFuncs(interceptor.Funcs{
		List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			o := &client.ListOptions{}
			o.ApplyOptions(opts)
			if err := fail(list, o.Namespace); err != nil {
				return err
			}
			return c.List(ctx, list, opts...)
		},
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if err := fail(obj, key.Namespace); err != nil {
				return err
			}
			return c.Get(ctx, key, obj, opts...)
		},
	}).Build()
}

func forbidden(resource string) error {
	return apierrors.NewForbidden(schema.GroupResource{Resource: resource}, "", errors.New("RBAC: access denied"))
}

// TestGatherRights: a refused read becomes Denied (and so unchecked), a missing CRD is nothing
// to check, any other error ends the run; a namespace-scoped viewer still gets its workloads.
func TestGatherRights(t *testing.T) {
	d := testDefaults(t)
	dep, rs := deployment("dcgm", appTemplate(nil, optInAnnotation))
	pod := podOf(t, d, dep, rs, "a", false, "")
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testNS}}
	sm := &monitoringv1.ServiceMonitor{ObjectMeta: metav1.ObjectMeta{Namespace: "monitoring", Name: "dcgm"}}
	pm := &monitoringv1.PodMonitor{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "dcgm"}}
	webhooks := chartWebhooks("kube-system", "rbac-proxy")
	objs := []client.Object{ns, dep, rs, pod, sm, pm, &webhooks[1]}
	noMatch := &meta.NoKindMatchError{GroupKind: schema.GroupKind{Group: "monitoring.coreos.com", Kind: "ServiceMonitor"}}
	for _, tc := range []struct {
		name      string
		fail      func(obj any, namespace string) error
		denied    []string
		unchecked []Code
		noCertAPI bool
		// monitors are the ServiceMonitors and PodMonitors read.
		monitors []string
		fatal    string
	}{{
		name:      "everything readable",
		fail:      func(any, string) error { return nil },
		unchecked: []Code{CodeScraperForbidden},
		monitors:  []string{"ServiceMonitor monitoring/dcgm", "PodMonitor gpu/dcgm"},
	}, {
		name: "namespace-scoped viewer",
		fail: func(obj any, namespace string) error {
			switch obj.(type) {
			case *corev1.Namespace:
				return forbidden("namespaces")
			case *monitoringv1.ServiceMonitorList, *monitoringv1.PodMonitorList:
				if namespace == "" {
					return forbidden("monitors")
				}
			case *admissionregistrationv1.MutatingWebhookConfigurationList:
				return forbidden("mutatingwebhookconfigurations")
			}
			return nil
		},
		denied:    []string{"namespaces ", "servicemonitors of other namespaces gpu", "podmonitors of other namespaces gpu"},
		unchecked: []Code{CodeNotInjected, CodePlainHTTPScrape, CodeScraperForbidden},
		monitors:  []string{"PodMonitor gpu/dcgm"},
	}, {
		name: "no prometheus-operator, no cert-manager",
		fail: func(obj any, namespace string) error {
			switch obj.(type) {
			case *monitoringv1.ServiceMonitorList, *monitoringv1.PodMonitorList, *cmapi.CertificateList:
				return noMatch
			}
			return nil
		},
		unchecked: []Code{CodeScraperForbidden},
		noCertAPI: true,
	}, {
		name: "no Pods",
		fail: func(obj any, namespace string) error {
			if _, ok := obj.(*corev1.PodList); ok {
				return forbidden("pods")
			}
			return nil
		},
		denied:    []string{"pods gpu"},
		monitors:  []string{"ServiceMonitor monitoring/dcgm", "PodMonitor gpu/dcgm"},
		unchecked: []Code{CodeNotInjected, CodeScraperForbidden, CodeStaleProxy, CodeUnprotectedExporter, CodeUnprotectedMetricsPort},
	}, {
		name: "API server failing",
		fail: func(obj any, namespace string) error {
			if _, ok := obj.(*corev1.ServiceList); ok {
				return apierrors.NewInternalError(errors.New("etcd is gone"))
			}
			return nil
		},
		fatal: "list services in namespace gpu",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			snap, err := Gather(context.Background(), refusing(t, tc.fail, objs...), d, Scope{Namespaces: []string{testNS}})
			if tc.fatal != "" {
				if err == nil || !strings.Contains(err.Error(), tc.fatal) {
					t.Fatalf("error %v, want %q", err, tc.fatal)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			denied := []string{}
			for _, d := range snap.Denied {
				denied = append(denied, d.Resource+" "+d.Namespace)
			}
			if !slices.Equal(denied, append([]string{}, tc.denied...)) {
				t.Errorf("denied %q, want %q", denied, tc.denied)
			}
			monitors := []string{}
			for _, m := range snap.ServiceMonitors {
				monitors = append(monitors, "ServiceMonitor "+m.Namespace+"/"+m.Name)
			}
			for _, m := range snap.PodMonitors {
				monitors = append(monitors, "PodMonitor "+m.Namespace+"/"+m.Name)
			}
			if !slices.Equal(monitors, append([]string{}, tc.monitors...)) {
				t.Errorf("monitors %q, want %q", monitors, tc.monitors)
			}
			if snap.NoCertificateAPI != tc.noCertAPI {
				t.Errorf("NoCertificateAPI %v, want %v", snap.NoCertificateAPI, tc.noCertAPI)
			}
			r := run(t, d, snap)
			var unchecked []Code
			for _, u := range r.Unchecked {
				unchecked = append(unchecked, u.Check)
			}
			if !slices.Equal(unchecked, tc.unchecked) {
				t.Errorf("unchecked %+v, want %v", r.Unchecked, tc.unchecked)
			}
			if tc.denied == nil || tc.denied[0] != "pods gpu" {
				if len(r.Workloads) != 1 || r.Workloads[0].Injection.State != StateNotInjected {
					t.Errorf("workloads %+v, want dcgm not injected", r.Workloads)
				}
			}
		})
	}
}

// TestGatherClientCAs: of the Secrets, only the client CA named and the serving Secrets' ca.crt
// are read, and only ca.crt is kept.
func TestGatherClientCAs(t *testing.T) {
	d := testDefaults(t)
	dep, rs := deployment("dcgm", appTemplate(nil, map[string]string{inject.AnnotationInject: "true", inject.AnnotationClientCA: "secret:scrapers-ca"}))
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testNS}}, dep, rs,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "scrapers-ca"}, Data: map[string][]byte{"ca.crt": []byte("CLIENT CA"), "tls.key": []byte("SECRET KEY")}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "serving", Annotations: map[string]string{certificateNameAnnotation: "serving"}}, Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{"ca.crt": []byte("SERVING CA"), "tls.key": []byte("SECRET KEY")}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "unrelated"}, Data: map[string][]byte{"password": []byte("hunter2")}},
	}
	var got []string
	c := refusing(t, func(obj any, namespace string) error {
		if _, ok := obj.(*corev1.Secret); ok {
			got = append(got, "get secret")
		}
		return nil
	}, objs...)
	snap, err := Gather(context.Background(), c, d, Scope{Namespaces: []string{testNS}})
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.ClientCAs) != 1 || string(snap.ClientCAs[0].PEM) != "CLIENT CA" || snap.ClientCAs[0].Name != "scrapers-ca" {
		t.Errorf("client CAs %+v, want scrapers-ca's ca.crt", snap.ClientCAs)
	}
	if len(snap.ServingCAs) != 1 || string(snap.ServingCAs[0].CA) != "SERVING CA" || snap.ServingCAs[0].Secret != "serving" {
		t.Errorf("serving CAs %+v, want serving's ca.crt", snap.ServingCAs)
	}
	if len(got) != 2 {
		t.Errorf("%d Secrets read, want 2 (the client CA and the serving Secret, not the unrelated one)", len(got))
	}
}
