package framework

import (
	"context"
	"fmt"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// RenewCertificate asks cert-manager to re-issue the Certificate ns/name now, as `cmctl renew`
// does: the condition Issuing=True, reason ManuallyTriggered, on its status.
func (cp *ControlPlane) RenewCertificate(ctx context.Context, ns, name string) error {
	cert := &cmv1.Certificate{}
	if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, cert); err != nil {
		return fmt.Errorf("reading Certificate %s/%s: %w", ns, name, err)
	}
	now := metav1.Now()
	cond := cmv1.CertificateCondition{
		Type: cmv1.CertificateConditionIssuing, Status: cmmeta.ConditionTrue,
		Reason: "ManuallyTriggered", Message: "Certificate re-issuance manually triggered",
		LastTransitionTime: &now, ObservedGeneration: cert.Generation,
	}
	replaced := false
	for i, c := range cert.Status.Conditions {
		if c.Type == cmv1.CertificateConditionIssuing {
			cert.Status.Conditions[i], replaced = cond, true
		}
	}
	if !replaced {
		cert.Status.Conditions = append(cert.Status.Conditions, cond)
	}
	if err := cp.Client.Status().Update(ctx, cert); err != nil {
		return fmt.Errorf("triggering the renewal of Certificate %s/%s: %w", ns, name, err)
	}
	return nil
}
