package check

import (
	"fmt"

	webhookcheck "github.com/rbac-proxy/rbac-proxy/webhook/check"
)

// finding is what a test compares: the code, the object to change and the workload the finding
// is about (the object itself when it is the workload).
type finding struct {
	Code     webhookcheck.Code
	Object   webhookcheck.ObjectRef
	Workload webhookcheck.ObjectRef
}

func (f finding) String() string {
	s := fmt.Sprintf("%s on %s %s/%s", f.Code, f.Object.Kind, f.Object.Namespace, f.Object.Name)
	if f.Workload != f.Object {
		s += fmt.Sprintf(" (workload %s %s/%s)", f.Workload.Kind, f.Workload.Namespace, f.Workload.Name)
	}
	return s
}

// workloadRef names the workload name of namespace ns.
func workloadRef(ns, name string) webhookcheck.ObjectRef {
	return webhookcheck.ObjectRef{Kind: kindOf(name), Namespace: ns, Name: name}
}

// onWorkload is a finding whose object to change is the workload itself.
func onWorkload(code webhookcheck.Code, w webhookcheck.ObjectRef) finding {
	return finding{code, w, w}
}

// wantFindings is every finding the cluster holds: one per broken workload, none on healthy.
func (c *cluster) wantFindings() []finding {
	gpu := c.gpu
	return []finding{
		onWorkload(webhookcheck.CodeNotInjected, workloadRef(c.late, late)),
		onWorkload(webhookcheck.CodeStaleProxy, workloadRef(gpu, stale)),
		{webhookcheck.CodePlainHTTPScrape, webhookcheck.ObjectRef{Kind: "ServiceMonitor", Namespace: gpu, Name: plainHTTP}, workloadRef(gpu, plainHTTP)},
		{webhookcheck.CodePlainHTTPScrape, webhookcheck.ObjectRef{Kind: "PodMonitor", Namespace: gpu, Name: podMon}, workloadRef(gpu, podMon)},
		{webhookcheck.CodeServiceTargetsAppPort, webhookcheck.ObjectRef{Kind: "Service", Namespace: gpu, Name: byPort}, workloadRef(gpu, byPort)},
		// The ServiceAccount gets the binding; the scraper the rights.
		{webhookcheck.CodeProxyCannotReview, webhookcheck.ObjectRef{Kind: "ServiceAccount", Namespace: gpu, Name: noReview}, workloadRef(gpu, noReview)},
		{webhookcheck.CodeScraperForbidden, webhookcheck.ObjectRef{Kind: "ServiceAccount", Namespace: c.monitoring, Name: scraperSA}, workloadRef(gpu, forbidden)},
		{webhookcheck.CodeCertificateNotReady, webhookcheck.ObjectRef{Kind: "Certificate", Namespace: gpu, Name: certificateName(noCert)}, workloadRef(gpu, noCert)},
		onWorkload(webhookcheck.CodeClientCATrustsServingCA, workloadRef(gpu, clientCA)),
		onWorkload(webhookcheck.CodeInvalidPolicy, workloadRef(gpu, invalid)),
		onWorkload(webhookcheck.CodeUnprotectedExporter, workloadRef(c.plain, dcgm)),
		onWorkload(webhookcheck.CodeUnprotectedMetricsPort, workloadRef(c.plain, metrics)),
	}
}
