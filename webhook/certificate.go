package webhook

import (
	"context"
	"fmt"
	"slices"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// The label on the Certificates the webhook creates; the webhook's cache watches only these.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedByValue = "rbac-proxy-injector"
)

// NewCertificate returns the Certificate for the workload in namespace: owned by the workload
// (so it is garbage-collected with it), signed by the policy's issuer.
func NewCertificate(c *inject.CertificatePolicy, namespace string, w inject.Workload) *cmapi.Certificate {
	cert := &cmapi.Certificate{
		TypeMeta: metav1.TypeMeta{APIVersion: cmapi.SchemeGroupVersion.String(), Kind: cmapi.CertificateKind},
		ObjectMeta: metav1.ObjectMeta{
			Name:      c.Name,
			Namespace: namespace,
			Labels:    map[string]string{LabelManagedBy: ManagedByValue},
		},
		Spec: cmapi.CertificateSpec{
			SecretName: c.Name,
			DNSNames:   slices.Clone(c.DNSNames),
			IssuerRef:  cmmeta.IssuerReference{Name: c.Issuer.Name, Kind: c.Issuer.Kind, Group: c.Issuer.Group},
			Usages:     []cmapi.KeyUsage{cmapi.UsageServerAuth, cmapi.UsageDigitalSignature},
			PrivateKey: &cmapi.CertificatePrivateKey{
				Algorithm:      cmapi.ECDSAKeyAlgorithm,
				Size:           256,
				RotationPolicy: cmapi.RotationPolicyAlways,
			},
		},
	}
	if ref := w.OwnerReference(); ref != nil {
		cert.OwnerReferences = []metav1.OwnerReference{*ref}
	}
	return cert
}

// CertificateEnsurer makes sure a workload's Certificate exists. It reads through Cache (an
// informer over the Certificates the webhook manages), so a Pod whose Certificate exists costs no
// API call; it creates through Client and treats AlreadyExists as success, so several replicas of
// several webhooks may race safely.
type CertificateEnsurer struct {
	Cache  client.Reader
	Client client.Writer
}

// EnsureResult says what Ensure did.
type EnsureResult string

const (
	CertificateExists  EnsureResult = "exists"
	CertificateCreated EnsureResult = "created"
	CertificateUpdated EnsureResult = "updated"
)

// Ensure creates the Certificate when it is missing, and brings the issuer, DNS names, secret and
// owner of an existing one managed by the webhook in line with desired. A managed Certificate
// that belongs to another workload (another kind or name: two workloads whose names map to one
// Certificate name) is refused, never rewritten; one whose owner was deleted and recreated under
// the same name is handed to the new one, before the garbage collector takes it.
func (e *CertificateEnsurer) Ensure(ctx context.Context, desired *cmapi.Certificate) (EnsureResult, error) {
	current := &cmapi.Certificate{}
	err := e.Cache.Get(ctx, types.NamespacedName{Namespace: desired.Namespace, Name: desired.Name}, current)
	switch {
	case err == nil:
		if current.Labels[LabelManagedBy] != ManagedByValue {
			return CertificateExists, nil
		}
		if problem := otherOwner(current, desired); problem != "" {
			return "", refused("Certificate %s/%s %s; it is left alone", current.Namespace, current.Name, problem)
		}
		if sameCertificate(current, desired) {
			return CertificateExists, nil
		}
		updated := current.DeepCopy()
		updated.Spec.SecretName = desired.Spec.SecretName
		updated.Spec.IssuerRef = desired.Spec.IssuerRef
		updated.Spec.DNSNames = desired.Spec.DNSNames
		updated.OwnerReferences = desired.OwnerReferences
		if err := e.Client.Update(ctx, updated); err != nil {
			return "", fmt.Errorf("updating Certificate %s/%s: %w", desired.Namespace, desired.Name, err)
		}
		return CertificateUpdated, nil
	case !apierrors.IsNotFound(err):
		return "", fmt.Errorf("reading Certificate %s/%s: %w", desired.Namespace, desired.Name, err)
	}
	if err := e.Client.Create(ctx, desired.DeepCopy()); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return CertificateExists, nil
		}
		return "", fmt.Errorf("creating Certificate %s/%s: %w", desired.Namespace, desired.Name, err)
	}
	return CertificateCreated, nil
}

func sameCertificate(a, b *cmapi.Certificate) bool {
	return a.Spec.SecretName == b.Spec.SecretName &&
		a.Spec.IssuerRef == b.Spec.IssuerRef &&
		slices.Equal(a.Spec.DNSNames, b.Spec.DNSNames) &&
		slices.Equal(a.OwnerReferences, b.OwnerReferences)
}

// otherOwner says how current belongs to another workload than desired, empty when it does not:
// the same kind and name (whatever the UID) is the same workload.
func otherOwner(current, desired *cmapi.Certificate) string {
	if len(desired.OwnerReferences) != 1 {
		return ""
	}
	want := desired.OwnerReferences[0]
	for _, ref := range current.OwnerReferences {
		if ref.Kind != want.Kind || ref.Name != want.Name || ref.APIVersion != want.APIVersion {
			return "belongs to " + ref.Kind + " " + ref.Name + ", not " + want.Kind + " " + want.Name
		}
	}
	return ""
}
