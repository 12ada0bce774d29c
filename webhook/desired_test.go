package webhook

import (
	"context"
	"slices"
	"strings"
	"testing"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/rbac-proxy/rbac-proxy/internal/testpki"
	"github.com/rbac-proxy/rbac-proxy/proxy/config"
	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

func controllerRef(apiVersion, kind, name string, uid types.UID) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: name, UID: uid, Controller: ptr.To(true)}
}

// templateOf is a Pod template that opts in with the given annotations.
func templateOf(ann map[string]string) corev1.PodTemplateSpec {
	a := map[string]string{inject.AnnotationInject: "true"}
	for k, v := range ann {
		a[k] = v
	}
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}, Annotations: a},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1", Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: 9090}}}}},
	}
}

// injectedPod renders a Pod from tmpl for workload w, as the webhook does at admission, and
// stores it under name with owners.
func injectedPod(t *testing.T, d *inject.Defaults, tmpl corev1.PodTemplateSpec, w inject.Workload, name string, owners ...metav1.OwnerReference) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{ObjectMeta: *tmpl.ObjectMeta.DeepCopy(), Spec: *tmpl.Spec.DeepCopy()}
	pod.Namespace, pod.Name, pod.UID, pod.OwnerReferences = testNamespace, name, "pod-uid", owners
	p, err := inject.NewPolicy(pod, inject.PolicyInput{Defaults: d, Namespace: testNamespace, Workload: w})
	if err != nil {
		t.Fatal(err)
	}
	inject.Render(pod, p)
	return pod
}

func TestWorkloadVerifier(t *testing.T) {
	tmpl := templateOf(nil)
	deploy := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: "web", UID: "deploy-uid"}, Spec: appsv1.DeploymentSpec{Template: tmpl}}
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: "web-1", UID: "rs-uid",
		OwnerReferences: []metav1.OwnerReference{controllerRef("apps/v1", "Deployment", "web", "deploy-uid")}}, Spec: appsv1.ReplicaSetSpec{Template: tmpl}}
	lonely := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: "lonely", UID: "lonely-uid"}, Spec: appsv1.ReplicaSetSpec{Template: tmpl}}
	adopted := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: "adopted", UID: "adopted-uid",
		OwnerReferences: []metav1.OwnerReference{controllerRef("argoproj.io/v1alpha1", "Rollout", "r", "rollout-uid")}}}
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: "dcgm", UID: "ds-uid"}, Spec: appsv1.DaemonSetSpec{Template: tmpl}}
	cj := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: "nightly", UID: "cj-uid"}}
	cj.Spec.JobTemplate.Spec.Template = tmpl
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: "nightly-1", UID: "job-uid",
		OwnerReferences: []metav1.OwnerReference{controllerRef("batch/v1", "CronJob", "nightly", "cj-uid")}}}
	api := fake.NewClientBuilder().WithScheme(testScheme()).WithObjects(deploy, rs, lonely, adopted, ds, cj, job).Build()
	v := &WorkloadVerifier{API: api}

	for _, tc := range []struct {
		name  string
		owner *metav1.OwnerReference
		// want is Kind/Name/UID of the workload, or a substring of the refusal.
		want    string
		refused bool
	}{
		{"bare pod", nil, "Pod/solo/pod-uid", false},
		{"deployment", ptr.To(controllerRef("apps/v1", "ReplicaSet", "web-1", "rs-uid")), "Deployment/web/deploy-uid", false},
		{"replicaset alone", ptr.To(controllerRef("apps/v1", "ReplicaSet", "lonely", "lonely-uid")), "ReplicaSet/lonely/lonely-uid", false},
		{"daemonset", ptr.To(controllerRef("apps/v1", "DaemonSet", "dcgm", "ds-uid")), "DaemonSet/dcgm/ds-uid", false},
		{"cronjob", ptr.To(controllerRef("batch/v1", "Job", "nightly-1", "job-uid")), "CronJob/nightly/cj-uid", false},
		// The forged-owner attack: a bare Pod naming someone else's controller.
		{"deployment as direct controller", ptr.To(controllerRef("apps/v1", "Deployment", "web", "deploy-uid")), "not one the injector can verify", true},
		{"replicaset of another UID", ptr.To(controllerRef("apps/v1", "ReplicaSet", "web-1", "forged-uid")), "has UID rs-uid, not the forged-uid", true},
		{"missing replicaset", ptr.To(controllerRef("apps/v1", "ReplicaSet", "ghost", "ghost-uid")), "does not exist", true},
		{"unknown kind", ptr.To(controllerRef("argoproj.io/v1alpha1", "Rollout", "r", "rollout-uid")), "not one the injector can verify", true},
		{"unknown parent", ptr.To(controllerRef("apps/v1", "ReplicaSet", "adopted", "adopted-uid")), "cannot verify", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: "solo", UID: "pod-uid"}}
			if tc.owner != nil {
				pod.OwnerReferences = []metav1.OwnerReference{*tc.owner}
			}
			sw, err := v.Verify(context.Background(), pod)
			if tc.refused {
				if !IsRefused(err) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("got %v, %v; want a refusal containing %q", sw, err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := sw.Kind + "/" + sw.Name + "/" + string(sw.UID); got != tc.want {
				t.Errorf("workload %s, want %s", got, tc.want)
			}
			if sw.Template == nil {
				t.Error("no template")
			}
		})
	}
}

func TestDesiredFor(t *testing.T) {
	c := testConfig()
	c.ScrapersCASecret = "rbac-proxy/scrapers-ca"
	d, err := c.Compile()
	if err != nil {
		t.Fatal(err)
	}
	deploy := inject.Workload{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: "deploy-uid"}
	honest := templateOf(nil)
	rsRef := controllerRef("apps/v1", "ReplicaSet", "web-1", "rs-uid")

	for _, tc := range []struct {
		name string
		pod  func() *corev1.Pod
		// template is the stored workload's; nil for a bare Pod (its own).
		template *corev1.PodTemplateSpec
		workload inject.Workload
		// wantNames are the Certificate's DNS names; refusal a substring of the refusal.
		wantNames  []string
		wantIssuer string
		refusal    string
		scrapers   bool
	}{
		{
			name:       "deployment",
			pod:        func() *corev1.Pod { return injectedPod(t, d, honest, deploy, "web-1-abc", rsRef) },
			template:   &honest,
			workload:   deploy,
			wantNames:  []string{"web", "web.team.svc", "web.team.svc.cluster.local"},
			wantIssuer: "ClusterIssuer/rbac-proxy-ca",
		},
		{
			// The forged-owner attack: the Pod's own annotations ask for foreign names and another
			// issuer; the workload's stored template decides.
			name: "the pod's annotations do not steer its workload's certificate",
			pod: func() *corev1.Pod {
				p := injectedPod(t, d, honest, deploy, "web-1-abc", rsRef)
				p.Annotations[inject.AnnotationDNSNames] = "*.kube-system.svc"
				p.Annotations[inject.AnnotationIssuer] = "ClusterIssuer/evil"
				return p
			},
			template:   &honest,
			workload:   deploy,
			wantNames:  []string{"web", "web.team.svc", "web.team.svc.cluster.local"},
			wantIssuer: "ClusterIssuer/rbac-proxy-ca",
		},
		{
			name:     "template without opt-in",
			pod:      func() *corev1.Pod { return injectedPod(t, d, honest, deploy, "web-1-abc", rsRef) },
			template: &corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{inject.AnnotationInject: "false"}}},
			workload: deploy,
			refusal:  "does not ask for the proxy",
		},
		{
			name: "bare pod that only looks injected",
			pod: func() *corev1.Pod {
				return &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: "fake", UID: "fake-uid", Annotations: map[string]string{inject.AnnotationStatus: inject.StatusInjected, inject.AnnotationInject: "true"}},
					Spec: corev1.PodSpec{
						Containers: []corev1.Container{{Name: inject.ContainerName, Image: "attacker/tool:1"}},
						Volumes:    []corev1.Volume{{Name: inject.TLSVolume, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "rbac-proxy-pod-fake"}}}},
					},
				}
			},
			workload: inject.Workload{APIVersion: "v1", Kind: "Pod", Name: "fake", UID: "fake-uid"},
			refusal:  "not the injector's rbac-proxy:test",
		},
		{
			// The status label alone brings a Pod to the controller, in any namespace.
			name: "bare pod in a namespace that never opted in",
			pod: func() *corev1.Pod {
				p := injectedPod(t, d, honest, inject.Workload{APIVersion: "v1", Kind: "Pod", Name: "solo"}, "solo")
				delete(p.Annotations, inject.AnnotationInject)
				return p
			},
			workload: inject.Workload{APIVersion: "v1", Kind: "Pod", Name: "solo", UID: "pod-uid"},
			refusal:  "does not ask for the proxy",
		},
		{
			name: "proxy image with another command",
			pod: func() *corev1.Pod {
				p := injectedPod(t, d, honest, deploy, "web-1-abc", rsRef)
				inject.ProxyContainer(p).Command = []string{"/bin/sh"}
				return p
			},
			template: &honest,
			workload: deploy,
			refusal:  "overrides the command",
		},
		{
			name: "proxy serving another file",
			pod: func() *corev1.Pod {
				p := injectedPod(t, d, honest, deploy, "web-1-abc", rsRef)
				c := inject.ProxyContainer(p)
				cfg, err := inject.ProxyConfigOf(c.Args)
				if err != nil {
					t.Fatal(err)
				}
				cfg.TLS.CertFile = "/tmp/other.crt"
				if c.Args, err = config.Args(cfg); err != nil {
					t.Fatal(err)
				}
				return p
			},
			template: &honest,
			workload: deploy,
			refusal:  "not the certificate of volume",
		},
		{
			name: "pod mounting another secret",
			pod: func() *corev1.Pod {
				p := injectedPod(t, d, honest, deploy, "web-1-abc", rsRef)
				for i := range p.Spec.Volumes {
					if p.Spec.Volumes[i].Name == inject.TLSVolume {
						p.Spec.Volumes[i].Secret.SecretName = "other"
					}
				}
				return p
			},
			template: &honest,
			workload: deploy,
			refusal:  "does not mount Secret rbac-proxy-deployment-web",
		},
		{
			// The template moved to its own Secret after the Pod was made (a paused rollout).
			name:     "template drifted to its own secret",
			pod:      func() *corev1.Pod { return injectedPod(t, d, honest, deploy, "web-1-abc", rsRef) },
			template: ptr.To(templateOf(map[string]string{inject.AnnotationTLSSecret: "own"})),
			workload: deploy,
			refusal:  "does not mount Secret own",
		},
		{
			name:     "template asking for a foreign issuer",
			pod:      func() *corev1.Pod { return injectedPod(t, d, honest, deploy, "web-1-abc", rsRef) },
			template: ptr.To(templateOf(map[string]string{inject.AnnotationIssuer: "ClusterIssuer/evil"})),
			workload: deploy,
			refusal:  "not an issuer the webhook allows",
		},
		{
			name: "scrapers' CA",
			pod: func() *corev1.Pod {
				return injectedPod(t, d, templateOf(map[string]string{inject.AnnotationClientCA: "scrapers"}), deploy, "web-1-abc", rsRef)
			},
			template:   ptr.To(templateOf(map[string]string{inject.AnnotationClientCA: "scrapers"})),
			workload:   deploy,
			wantNames:  []string{"web", "web.team.svc", "web.team.svc.cluster.local"},
			wantIssuer: "ClusterIssuer/rbac-proxy-ca",
			scrapers:   true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := tc.pod()
			sw := &StoredWorkload{Workload: tc.workload, Template: tc.template}
			if tc.template == nil {
				sw.Template = &corev1.PodTemplateSpec{ObjectMeta: pod.ObjectMeta, Spec: pod.Spec}
			}
			got, err := DesiredFor(pod, sw, d, nil)
			if tc.refusal != "" {
				if !IsRefused(err) || !strings.Contains(err.Error(), tc.refusal) {
					t.Fatalf("got %v, %v; want a refusal containing %q", got, err, tc.refusal)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			cert := got.Certificate
			if cert == nil {
				t.Fatal("no Certificate")
			}
			if strings.Join(cert.Spec.DNSNames, ",") != strings.Join(tc.wantNames, ",") {
				t.Errorf("DNS names %v, want %v", cert.Spec.DNSNames, tc.wantNames)
			}
			if issuer := cert.Spec.IssuerRef.Kind + "/" + cert.Spec.IssuerRef.Name; issuer != tc.wantIssuer {
				t.Errorf("issuer %s, want %s", issuer, tc.wantIssuer)
			}
			if len(cert.OwnerReferences) != 1 || cert.OwnerReferences[0].UID != tc.workload.UID {
				t.Errorf("owners %v, want the workload %s", cert.OwnerReferences, tc.workload.UID)
			}
			if got.ScrapersCA != tc.scrapers {
				t.Errorf("scrapers' CA %v, want %v", got.ScrapersCA, tc.scrapers)
			}
		})
	}
}

// TestScrapersCAFrom: only a CA certificate is published, and only the first of a chain.
func TestScrapersCAFrom(t *testing.T) {
	ca := newTestCA(t, true)
	leaf := newTestCA(t, false)
	src := inject.SecretRef{Namespace: "rbac-proxy", Name: "scrapers-ca"}
	got, err := scrapersCAFrom(append(append([]byte{}, ca...), leaf...), src)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(ca) {
		t.Errorf("published %s, want only the CA %s", got, ca)
	}
	if _, err := scrapersCAFrom(leaf, src); err == nil || !strings.Contains(err.Error(), "not a CA certificate") {
		t.Errorf("a leaf certificate: %v, want refused", err)
	}
	if _, err := scrapersCAFrom([]byte("junk"), src); err == nil {
		t.Error("junk accepted")
	}
}

// newTestCA returns a PEM certificate: a CA's, or a client's signed by a throwaway CA.
func newTestCA(t *testing.T, isCA bool) []byte {
	t.Helper()
	ca, err := testpki.NewCA("scrapers")
	if err != nil {
		t.Fatal(err)
	}
	if isCA {
		return ca.CertPEM
	}
	pair, err := ca.Client("prometheus")
	if err != nil {
		t.Fatal(err)
	}
	return pair.CertPEM
}

// TestScrapersCAPublisher: the ConfigMap is created, follows a rotated CA on refresh, and one the
// injector did not make is left alone.
func TestScrapersCAPublisher(t *testing.T) {
	ctx := context.Background()
	src := inject.SecretRef{Namespace: "rbac-proxy", Name: "scrapers-ca"}
	first, second := newTestCA(t, true), newTestCA(t, true)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: src.Namespace, Name: src.Name}, Data: map[string][]byte{corev1.TLSCertKey: first}}
	foreign := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "theirs", Name: inject.ScrapersCAConfigMap}, Data: map[string]string{"ca.crt": "mine"}}
	c := fake.NewClientBuilder().WithScheme(testScheme()).WithObjects(secret, foreign).Build()
	p := &ScrapersCAPublisher{Source: src, API: c, Cache: c, Client: c}

	data := func(ns string) string {
		t.Helper()
		cm := &corev1.ConfigMap{}
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: inject.ScrapersCAConfigMap}, cm); err != nil {
			t.Fatal(err)
		}
		return cm.Data["ca.crt"]
	}
	if res, err := p.Ensure(ctx, testNamespace); err != nil || res != CertificateCreated {
		t.Fatalf("first Ensure: %v, %v", res, err)
	}
	if data(testNamespace) != string(first) {
		t.Error("the ConfigMap does not hold the CA")
	}
	secret.Data[corev1.TLSCertKey] = second
	if err := c.Update(ctx, secret); err != nil {
		t.Fatal(err)
	}
	if err := p.refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if data(testNamespace) != string(second) {
		t.Error("the refresh did not follow the rotated CA")
	}
	if _, err := p.Ensure(ctx, "theirs"); !IsRefused(err) {
		t.Errorf("Ensure over a ConfigMap the injector did not make: %v, want refused", err)
	}
	if data("theirs") != "mine" {
		t.Error("a ConfigMap the injector did not make was changed")
	}
	// The real cache sees only labelled ConfigMaps: one without the label is found through the
	// AlreadyExists of the create, and refused all the same.
	labelled := fake.NewClientBuilder().WithScheme(testScheme()).Build()
	p.Cache = labelled
	if res, err := p.Ensure(ctx, "theirs"); !IsRefused(err) {
		t.Errorf("Ensure over an unlabelled ConfigMap the cache cannot see: %v, %v; want refused", res, err)
	}
}

// TestUnverifiableWorkloadsAreDenied: admission refuses what the certificate controller would
// refuse, so no Pod waits forever for a Secret or a CA ConfigMap.
func TestUnverifiableWorkloadsAreDenied(t *testing.T) {
	d, err := testConfig().Compile()
	if err != nil {
		t.Fatal(err)
	}
	rollout := inject.Workload{APIVersion: "argoproj.io/v1alpha1", Kind: "Rollout", Name: "r", UID: "rollout-uid"}
	rsRef := controllerRef("apps/v1", "ReplicaSet", "r-1", "rs-uid")
	for _, tc := range []struct {
		name     string
		ann      map[string]string
		generate bool
		owner    *metav1.OwnerReference
		workload inject.Workload
		want     string
	}{
		{"generateName bare pod", nil, true, nil, inject.Workload{APIVersion: "v1", Kind: "Pod", Name: "solo"}, "needs a name of its own"},
		{"replicaset of a rollout", nil, false, &rsRef, rollout, "workload Rollout r is not one the injector can verify"},
		{"own secret, scrapers' CA, unverifiable controller", map[string]string{inject.AnnotationTLSSecret: "own", inject.AnnotationClientCA: "scrapers"}, false, ptr.To(controllerRef("apps.kruise.io/v1alpha1", "CloneSet", "c", "c-uid")), inject.Workload{APIVersion: "apps.kruise.io/v1alpha1", Kind: "CloneSet", Name: "c"}, "not one the injector can verify"},
		{"own secret, unverifiable controller", map[string]string{inject.AnnotationTLSSecret: "own"}, false, ptr.To(controllerRef("apps.kruise.io/v1alpha1", "CloneSet", "c", "c-uid")), inject.Workload{APIVersion: "apps.kruise.io/v1alpha1", Kind: "CloneSet", Name: "c"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmpl := templateOf(tc.ann)
			pod := &corev1.Pod{ObjectMeta: tmpl.ObjectMeta, Spec: tmpl.Spec}
			pod.Namespace = testNamespace
			if tc.generate {
				pod.GenerateName = "solo-"
			} else {
				pod.Name = "p"
			}
			if tc.owner != nil {
				pod.OwnerReferences = []metav1.OwnerReference{*tc.owner}
			}
			_, err := PolicyFor(pod, inject.PolicyInput{Defaults: d, Namespace: testNamespace, Workload: tc.workload})
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("denied: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v, want a denial containing %q", err, tc.want)
			}
		})
	}
}

// TestEnsureOwnership: a managed Certificate is handed to its workload recreated under the same
// name, and never rewritten for another workload whose name maps to the same Certificate.
func TestEnsureOwnership(t *testing.T) {
	ctx := context.Background()
	d, err := testConfig().Compile()
	if err != nil {
		t.Fatal(err)
	}
	cert := func(name string, uid types.UID, dnsNames ...string) *cmapi.Certificate {
		c := NewCertificate(&inject.CertificatePolicy{Name: "rbac-proxy-deployment-web", Issuer: *d.Issuer, DNSNames: dnsNames}, testNamespace,
			inject.Workload{APIVersion: "apps/v1", Kind: "Deployment", Name: name, UID: uid})
		c.TypeMeta = metav1.TypeMeta{}
		return c
	}
	for _, tc := range []struct {
		name      string
		current   *cmapi.Certificate
		desired   *cmapi.Certificate
		want      EnsureResult
		refused   bool
		wantOwner types.UID
	}{
		{"recreated workload", cert("web", "old-uid", "web"), cert("web", "new-uid", "web"), CertificateUpdated, false, "new-uid"},
		{"same workload", cert("web", "uid", "web"), cert("web", "uid", "web"), CertificateExists, false, "uid"},
		{"another workload's", cert("web", "victim-uid", "web"), cert("web-collides", "attacker-uid", "*.team.svc"), "", true, "victim-uid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fake.NewClientBuilder().WithScheme(testScheme()).WithObjects(tc.current).Build()
			e := &CertificateEnsurer{Cache: c, Client: c}
			res, err := e.Ensure(ctx, tc.desired)
			if tc.refused != IsRefused(err) || !tc.refused && (err != nil || res != tc.want) {
				t.Fatalf("Ensure: %v, %v; want %v (refused %v)", res, err, tc.want, tc.refused)
			}
			got := &cmapi.Certificate{}
			if err := c.Get(ctx, client.ObjectKeyFromObject(tc.current), got); err != nil {
				t.Fatal(err)
			}
			if len(got.OwnerReferences) != 1 || got.OwnerReferences[0].UID != tc.wantOwner {
				t.Errorf("owners %+v, want %s", got.OwnerReferences, tc.wantOwner)
			}
			if tc.refused && !slices.Equal(got.Spec.DNSNames, tc.current.Spec.DNSNames) {
				t.Errorf("names %v changed", got.Spec.DNSNames)
			}
		})
	}
}
