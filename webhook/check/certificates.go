package check

import (
	"fmt"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
)

// ruleCertificate: the Certificate the injector makes for a protected workload exists and is
// Ready.
func ruleCertificate(a *analysis, x *assessed) {
	if !x.protected() || x.policy.TLS.Certificate == nil || a.snap.denied("certificates", x.ref.Namespace) {
		return
	}
	want := x.policy.TLS.Certificate
	ref := ObjectRef{Kind: "Certificate", Namespace: x.ref.Namespace, Name: want.Name}
	fix := fmt.Sprintf("%s (most often the issuer %s is missing or not Ready)", command("kubectl", "describe", "certificate", want.Name, "-n", x.ref.Namespace), want.Issuer)
	if a.snap.NoCertificateAPI {
		a.find(CodeCertificateNotReady, ref, x, "cert-manager's Certificates are not served in this cluster, so the injector can make none", "install cert-manager")
		return
	}
	var cert *cmapi.Certificate
	for i := range a.snap.Certificates {
		if c := &a.snap.Certificates[i]; c.Namespace == ref.Namespace && c.Name == ref.Name {
			cert = c
		}
	}
	if cert == nil {
		a.find(CodeCertificateNotReady, ref, x, fmt.Sprintf("Certificate %s of %s %s does not exist: the injector's certificate controller makes it for injected Pods (is it running, and does it verify the workload?)", want.Name, x.ref.Kind, x.ref.Name), fix)
		return
	}
	for _, c := range cert.Status.Conditions {
		if c.Type != cmapi.CertificateConditionReady {
			continue
		}
		if c.Status == cmmeta.ConditionTrue {
			return
		}
		a.find(CodeCertificateNotReady, ref, x, fmt.Sprintf("Certificate %s of %s %s is not Ready: %s: %s", want.Name, x.ref.Kind, x.ref.Name, c.Reason, c.Message), fix)
		return
	}
	a.find(CodeCertificateNotReady, ref, x, fmt.Sprintf("Certificate %s of %s %s has no Ready condition yet: cert-manager has not processed it", want.Name, x.ref.Kind, x.ref.Name), fix)
}
