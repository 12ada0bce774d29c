package controlplane

import (
	"context"
	"testing"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/rbac-proxy/rbac-proxy/internal/testpki"
	"github.com/rbac-proxy/rbac-proxy/test/framework"
)

// The chain self-signed Issuer → CA Certificate → CA Issuer → leaf
// Certificate only ends in a Secret when cert-manager's controllers issue,
// approve and sign for real.
func TestCertManagerIssuesCAChain(t *testing.T) {
	ctx := t.Context()
	ns, err := cp.CreateNamespace(ctx, "certs", nil)
	if err != nil {
		t.Fatal(err)
	}
	create := func(obj client.Object) {
		t.Helper()
		if err := cp.Client.Create(ctx, obj); err != nil {
			t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
		}
	}
	create(&cmv1.Issuer{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "selfsigned"},
		Spec:       cmv1.IssuerSpec{IssuerConfig: cmv1.IssuerConfig{SelfSigned: &cmv1.SelfSignedIssuer{}}},
	})
	create(&cmv1.Certificate{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "root"},
		Spec: cmv1.CertificateSpec{
			IsCA: true, CommonName: "rbac-proxy test root", SecretName: "root-ca",
			IssuerRef: cmmeta.IssuerReference{Kind: "Issuer", Name: "selfsigned"},
		},
	})
	create(&cmv1.Issuer{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ca"},
		Spec:       cmv1.IssuerSpec{IssuerConfig: cmv1.IssuerConfig{CA: &cmv1.CAIssuer{SecretName: "root-ca"}}},
	})
	create(&cmv1.Certificate{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "leaf"},
		Spec: cmv1.CertificateSpec{
			DNSNames: []string{"exporter." + ns + ".svc"}, SecretName: "leaf-tls",
			IssuerRef: cmmeta.IssuerReference{Kind: "Issuer", Name: "ca"},
		},
	})

	var secret corev1.Secret
	err = framework.Eventually(ctx, 90*time.Second, "the leaf Secret with tls.crt, tls.key and ca.crt", func(ctx context.Context) (bool, error) {
		if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "leaf-tls"}, &secret); err != nil {
			return false, err
		}
		for _, k := range []string{"tls.crt", "tls.key", "ca.crt"} {
			if len(secret.Data[k]) == 0 {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}

	_, ca, err := testpki.VerifyServing(secret.Data["tls.crt"], secret.Data["ca.crt"], "exporter."+ns+".svc")
	if ca == nil {
		t.Fatal(err)
	}
	if !ca.IsCA || ca.Subject.CommonName != "rbac-proxy test root" {
		t.Fatalf("ca.crt is %q (IsCA=%v), want the test root CA", ca.Subject.CommonName, ca.IsCA)
	}
	if err != nil {
		t.Fatalf("the leaf certificate does not verify against the CA: %v", err)
	}
}
