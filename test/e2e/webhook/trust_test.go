package webhook_test

// The security review's findings against the injector, each as an attack on the running webhook
// and control plane: none of them may get a Certificate, or change one, that the operator's
// configuration and the stored objects do not grant.

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/rbac-proxy/rbac-proxy/internal/testpki"
	"github.com/rbac-proxy/rbac-proxy/test/framework"
	"github.com/rbac-proxy/rbac-proxy/webhook"
	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// postReview sends a hand-made AdmissionReview straight to the webhook server, as any Pod that
// can reach its Service could, and returns the response.
func postReview(t *testing.T, pod *corev1.Pod, namespace string) *admissionv1.AdmissionResponse {
	t.Helper()
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       uuid.NewUUID(),
			Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			Namespace: namespace,
			Name:      pod.Name,
			Operation: admissionv1.Create,
			Object:    runtime.RawExtension{Raw: raw},
		},
	}
	body, err := json.Marshal(review)
	if err != nil {
		t.Fatal(err)
	}
	roots, err := testpki.PoolFromPEM(inj.caPEM)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	resp, err := c.Post(inj.url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var answer admissionv1.AdmissionReview
	if err := json.Unmarshal(out, &answer); err != nil || answer.Response == nil {
		t.Fatalf("the webhook answered %d %s: %v", resp.StatusCode, out, err)
	}
	return answer.Response
}

// Finding 1: a forged AdmissionReview naming kube-system (and one naming a labelled namespace)
// is answered, and creates nothing anywhere: admission has no side effects.
func TestForgedAdmissionReviewCreatesNothing(t *testing.T) {
	ctx := t.Context()
	ns := labelledNamespace(t, "forged")
	for _, target := range []string{"kube-system", ns} {
		pod := simplePod(target, "forged")
		pod.Annotations = map[string]string{inject.AnnotationInject: "true"}
		resp := postReview(t, pod, target)
		if !resp.Allowed || len(resp.Patch) == 0 {
			t.Fatalf("%s: the forged review was not answered with a patch: %+v", target, resp.Result)
		}
		// Before, the Certificate was created before the answer was sent.
		err := cp.Client.Get(ctx, client.ObjectKey{Namespace: target, Name: "rbac-proxy-pod-forged"}, &cmapi.Certificate{})
		if !apierrors.IsNotFound(err) {
			t.Errorf("Certificate %s/rbac-proxy-pod-forged after a forged review: %v, want NotFound", target, err)
		}
	}
	// A Pod the API server stores gets its Certificate: the controller runs, and had the forged
	// reviews reached it they would have had their Certificates by now.
	real := simplePod(ns, "stored")
	if err := cp.Client.Create(ctx, real); err != nil {
		t.Fatal(err)
	}
	waitCertificate(t, ns, "rbac-proxy-pod-stored")
	var all cmapi.CertificateList
	if err := cp.Client.List(ctx, &all, client.MatchingLabels{webhook.LabelManagedBy: webhook.ManagedByValue}); err != nil {
		t.Fatal(err)
	}
	for _, c := range all.Items {
		if c.Name == "rbac-proxy-pod-forged" {
			t.Errorf("Certificate %s/%s exists after forged reviews", c.Namespace, c.Name)
		}
	}
}

// Finding 2: a Pod author names an issuer or DNS names the operator did not allow; the Pod is
// denied with the allowed ones named. An Issuer of the Pod's own namespace is allowed (Issuer/*).
func TestConfusedDeputyIsDenied(t *testing.T) {
	ctx := t.Context()
	ns := labelledNamespace(t, "deputy")
	for _, tc := range []struct {
		name, annotation, value, want string
	}{
		{"cluster-issuer", inject.AnnotationIssuer, "ClusterIssuer/e2e-selfsigned", "not an issuer the webhook allows Pods to name; allowed: ClusterIssuer/" + issuerName + " (the default), Issuer/*"},
		{"external-issuer", inject.AnnotationIssuer, "AWSPCAClusterIssuer.awspca.cert-manager.io/pca", "not an issuer the webhook allows"},
		{"foreign-names", inject.AnnotationDNSNames, "*.kube-system.svc,kubernetes.default.svc,*.other-team.svc.cluster.local", "*.kube-system.svc (outside the namespace " + ns + "), kubernetes.default.svc (outside the namespace " + ns + "), *.other-team.svc.cluster.local (outside"},
		{"bare-wildcard", inject.AnnotationDNSNames, "*.svc.cluster.local", "outside the namespace"},
		{"serving-ca-as-client-ca", inject.AnnotationClientCA, "issuer", "trusted the CA that signs every workload's serving certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := simplePod(ns, tc.name)
			pod.Annotations = map[string]string{tc.annotation: tc.value}
			err := cp.Client.Create(ctx, pod)
			if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("creating a Pod with %s=%q: %v; want Forbidden with %q", tc.annotation, tc.value, err, tc.want)
			}
		})
	}

	// Allowed: an Issuer of the namespace and a name inside it.
	own := &cmapi.Issuer{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "own"},
		Spec:       cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{SelfSigned: &cmapi.SelfSignedIssuer{}}},
	}
	if err := cp.Client.Create(ctx, own); err != nil {
		t.Fatal(err)
	}
	pod := simplePod(ns, "own-issuer")
	pod.Annotations = map[string]string{inject.AnnotationIssuer: "Issuer/own", inject.AnnotationDNSNames: "*.own-issuer." + ns + ".svc"}
	if err := cp.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	cert := waitCertificate(t, ns, "rbac-proxy-pod-own-issuer")
	if cert.Spec.IssuerRef.Kind != "Issuer" || cert.Spec.IssuerRef.Name != "own" || !slices.Contains(cert.Spec.DNSNames, "*.own-issuer."+ns+".svc") {
		t.Errorf("Certificate issuer %+v, names %v", cert.Spec.IssuerRef, cert.Spec.DNSNames)
	}
}

// refusals returns the notes of the controller's CertificateRefused Events on a Pod.
func refusals(ctx context.Context, ns, pod string) ([]string, error) {
	var list eventsv1.EventList
	if err := cp.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	var notes []string
	for _, e := range list.Items {
		if e.Regarding.Name == pod && e.Reason == "CertificateRefused" {
			notes = append(notes, e.Note)
		}
	}
	return notes, nil
}

// waitRefusal waits for the controller's Event on a Pod saying why it got no Certificate.
func waitRefusal(t *testing.T, ns, pod, want string) {
	t.Helper()
	var seen []string
	err := framework.Eventually(t.Context(), 30*time.Second, "a CertificateRefused Event on Pod "+ns+"/"+pod, func(ctx context.Context) (bool, error) {
		var err error
		seen, err = refusals(ctx, ns, pod)
		for _, note := range seen {
			if strings.Contains(note, want) {
				return true, nil
			}
		}
		return false, err
	})
	if err != nil {
		t.Fatalf("%v; Events seen: %q", err, seen)
	}
}

// Finding 2, second half: a Pod that only looks injected (its own container named rbac-proxy and
// the status annotation and label, so the webhook leaves it alone) gets no Certificate.
func TestLookalikeInjectedPodGetsNoCertificate(t *testing.T) {
	ctx := t.Context()
	ns := labelledNamespace(t, "lookalike")
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:   ns,
			Name:        "fake",
			Labels:      map[string]string{inject.LabelStatus: inject.StatusInjected},
			Annotations: map[string]string{inject.AnnotationStatus: inject.StatusInjected},
		},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name:         inject.ContainerName,
				Image:        "example.com/attacker:1",
				VolumeMounts: []corev1.VolumeMount{{Name: "rbac-proxy-tls", MountPath: "/etc/rbac-proxy/tls"}},
			}},
			Volumes: []corev1.Volume{{Name: "rbac-proxy-tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "rbac-proxy-pod-fake"}}}},
		},
	}
	if err := cp.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	waitRefusal(t, ns, "fake", "not the injector's "+proxyImage)
	if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "rbac-proxy-pod-fake"}, &cmapi.Certificate{}); !apierrors.IsNotFound(err) {
		t.Errorf("Certificate for a look-alike Pod: %v, want NotFound", err)
	}
}

// Finding 3: bare Pods whose ownerReferences name another workload's controller leave that
// workload's Certificate as its own template says, and get none of their own.
func TestForgedOwnerLeavesCertificateAlone(t *testing.T) {
	ctx := t.Context()
	ns := labelledNamespace(t, "owner")
	victim := deployment(ns, "victim", 1, nil)
	if err := cp.Client.Create(ctx, victim); err != nil {
		t.Fatal(err)
	}
	waitPods(t, ns, "victim", 1)
	before := waitCertificate(t, ns, "rbac-proxy-deployment-victim")
	var rsList appsv1.ReplicaSetList
	if err := cp.Client.List(ctx, &rsList, client.InNamespace(ns)); err != nil || len(rsList.Items) != 1 {
		t.Fatalf("the victim's ReplicaSet: %v, %d", err, len(rsList.Items))
	}
	rs := rsList.Items[0]
	hostile := map[string]string{inject.AnnotationDNSNames: "evil." + ns + ".svc"}

	// A Pod naming the victim's Deployment as its direct controller is denied at admission.
	direct := simplePod(ns, "direct")
	direct.Annotations = hostile
	direct.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "victim", UID: victim.UID, Controller: ptr.To(true)}}
	if err := cp.Client.Create(ctx, direct); !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "is not one the injector can verify") {
		t.Errorf("a Pod controlled by a Deployment directly: %v, want Forbidden", err)
	}

	// A Pod naming the victim's real ReplicaSet is admitted (it may run as the workload), but the
	// Certificate comes from the Deployment's stored template, not from the Pod's annotations.
	existsBefore := reconciled(t, "exists")
	adopted := simplePod(ns, "adopted")
	adopted.Labels = map[string]string{"other": "labels"}
	adopted.Annotations = hostile
	adopted.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: ptr.To(true)}}
	if err := cp.Client.Create(ctx, adopted); err != nil {
		t.Fatal(err)
	}
	// A Pod naming the ReplicaSet with a made-up UID is refused by the controller.
	forged := simplePod(ns, "forged")
	forged.Labels = map[string]string{"other": "labels"}
	forged.Annotations = hostile
	forged.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: uuid.NewUUID(), Controller: ptr.To(true)}}
	if err := cp.Client.Create(ctx, forged); err != nil {
		t.Fatal(err)
	}
	waitRefusal(t, ns, "forged", "not the "+string(forged.OwnerReferences[0].UID)+" its reference names")

	// The adopted Pod was reconciled: as the victim's (its Certificate already matched), or, had
	// the ReplicaSet released the Pod (its labels do not match) first, refused as a bare Pod
	// mounting another workload's Secret.
	err := framework.Eventually(ctx, 30*time.Second, "the controller to reconcile the adopted Pod", func(ctx context.Context) (bool, error) {
		if reconciled(t, "exists") > existsBefore {
			return true, nil
		}
		notes, err := refusals(ctx, ns, "adopted")
		return len(notes) > 0, err
	})
	if err != nil {
		t.Fatal(err)
	}
	after := &cmapi.Certificate{}
	if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(before), after); err != nil {
		t.Fatal(err)
	}
	if after.Generation != before.Generation || slices.Contains(after.Spec.DNSNames, "evil."+ns+".svc") || after.Spec.IssuerRef != before.Spec.IssuerRef {
		t.Errorf("the victim's Certificate changed: generation %d → %d, names %v, issuer %+v", before.Generation, after.Generation, after.Spec.DNSNames, after.Spec.IssuerRef)
	}
	if n := len(managedCertificates(t, ns)); n != 1 {
		t.Errorf("%d Certificates in %s, want only the victim's", n, ns)
	}
}

// reconciled returns the certificate controller's counter for one result.
func reconciled(t *testing.T, result string) float64 {
	t.Helper()
	families, err := inj.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "rbac_proxy_injector_certificate_reconciles_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			if labelValue(m, "result") == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// Each kind of workload gets its Certificate, owned by the workload the API server stored:
// a StatefulSet, a Job, a Job of a CronJob, and a DaemonSet (on a Node object: its controller
// creates a Pod per Node, and no kubelet is needed for that).
func TestCertificateForEveryWorkloadKind(t *testing.T) {
	ctx := t.Context()
	ns := labelledNamespace(t, "kinds")
	labels := func(name string) map[string]string { return map[string]string{"app": name} }
	template := func(name string) corev1.PodTemplateSpec {
		return corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: labels(name)},
			Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers: []corev1.Container{{Name: "app", Image: "example.com/" + name + ":1",
					Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: 9400}}}},
			},
		}
	}
	always := func(name string) corev1.PodTemplateSpec {
		tmpl := template(name)
		tmpl.Spec.RestartPolicy = corev1.RestartPolicyAlways
		return tmpl
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "gpu-node-" + ns}}
	if err := cp.Client.Create(ctx, node); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), node) })
	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sts"},
		Spec:       appsv1.StatefulSetSpec{Replicas: ptr.To[int32](1), Selector: &metav1.LabelSelector{MatchLabels: labels("sts")}, Template: always("sts")},
	}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "dcgm-exporter"},
		Spec:       appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels("dcgm-exporter")}, Template: always("dcgm-exporter")},
	}
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "job"}, Spec: batchv1.JobSpec{Template: template("job")}}
	cron := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "nightly"},
		Spec:       batchv1.CronJobSpec{Schedule: "0 0 * * *", Suspend: ptr.To(true), JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: template("nightly")}}},
	}
	for _, obj := range []client.Object{sts, ds, job, cron} {
		if err := cp.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	// The CronJob's Job, created now rather than at midnight, controlled by the CronJob.
	cronJob := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "nightly-manual", OwnerReferences: []metav1.OwnerReference{
			{APIVersion: "batch/v1", Kind: "CronJob", Name: cron.Name, UID: cron.UID, Controller: ptr.To(true)},
		}},
		Spec: batchv1.JobSpec{Template: template("nightly")},
	}
	if err := cp.Client.Create(ctx, cronJob); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cert, kind string
		owner      client.Object
	}{
		{"rbac-proxy-statefulset-sts", "StatefulSet", sts},
		{"rbac-proxy-daemonset-dcgm-exporter", "DaemonSet", ds},
		{"rbac-proxy-job-job", "Job", job},
		{"rbac-proxy-cronjob-nightly", "CronJob", cron},
	} {
		cert := waitCertificate(t, ns, tc.cert)
		if len(cert.OwnerReferences) != 1 || cert.OwnerReferences[0].Kind != tc.kind || cert.OwnerReferences[0].UID != tc.owner.GetUID() {
			t.Errorf("Certificate %s owners %+v, want %s %s", tc.cert, cert.OwnerReferences, tc.kind, tc.owner.GetUID())
		}
	}
}

// Finding 5: values the proxy would refuse at start are denied at admission, so no Pod waits
// forever on a sidecar that cannot start.
func TestValuesTheProxyRefusesAreDenied(t *testing.T) {
	ctx := t.Context()
	ns := labelledNamespace(t, "crash")
	for i, tc := range []struct{ annotation, value string }{
		{inject.AnnotationAllowPaths, "/["},
		{inject.AnnotationAllowPaths, `/metrics"`},
		{inject.AnnotationAllowedGroups, `"a,b"`},
		{inject.AnnotationTokenAudiences, `aud"ience`},
	} {
		pod := simplePod(ns, "crash-"+string(rune('a'+i)))
		pod.Annotations = map[string]string{tc.annotation: tc.value}
		if tc.annotation == inject.AnnotationAllowedGroups {
			pod.Annotations[inject.AnnotationAuthz] = "static"
		}
		err := cp.Client.Create(ctx, pod)
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), tc.annotation) {
			t.Errorf("%s=%q: %v; want Forbidden naming the annotation", tc.annotation, tc.value, err)
		}
	}
}

// A Deployment deleted and created again under the same name keeps a Certificate: the old one is
// handed to the new Deployment, or made again once the garbage collector deleted it.
func TestRecreatedWorkloadKeepsItsCertificate(t *testing.T) {
	ctx := t.Context()
	ns := labelledNamespace(t, "recreate")
	first := deployment(ns, "web", 1, nil)
	if err := cp.Client.Create(ctx, first); err != nil {
		t.Fatal(err)
	}
	waitCertificate(t, ns, "rbac-proxy-deployment-web")
	if err := cp.Client.Delete(ctx, first, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil {
		t.Fatal(err)
	}
	err := framework.Eventually(ctx, 60*time.Second, "the first Deployment to be gone", func(ctx context.Context) (bool, error) {
		err := cp.Client.Get(ctx, client.ObjectKeyFromObject(first), &appsv1.Deployment{})
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	})
	if err != nil {
		t.Fatal(err)
	}
	second := deployment(ns, "web", 1, nil)
	if err := cp.Client.Create(ctx, second); err != nil {
		t.Fatal(err)
	}
	// Owned by the new Deployment, and still there once the garbage collector has seen the old
	// one go (it deletes what the old UID owns within seconds here).
	owned := func(ctx context.Context) (bool, error) {
		cert := &cmapi.Certificate{}
		err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "rbac-proxy-deployment-web"}, cert)
		if err != nil {
			return false, client.IgnoreNotFound(err)
		}
		return len(cert.OwnerReferences) == 1 && cert.OwnerReferences[0].UID == second.UID, nil
	}
	if err := framework.Eventually(ctx, 60*time.Second, "the Certificate owned by the new Deployment", owned); err != nil {
		t.Fatalf("%v\n%s", err, inj.logs.String())
	}
	time.Sleep(5 * time.Second) // the garbage collector's pass over the old UID's dependents
	if err := framework.Eventually(ctx, 30*time.Second, "the Certificate still owned by the new Deployment", owned); err != nil {
		t.Fatal(err)
	}
	waitSecret(t, ns, "rbac-proxy-deployment-web", "web."+ns+".svc")
}
