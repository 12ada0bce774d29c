package check

// Code names one kind of finding. The codes, their severities and descriptions are the table of
// docs/webhook.md's "check" section (a test compares the two).
type Code string

const (
	CodeNotInjected             Code = "NotInjected"
	CodeInvalidPolicy           Code = "InvalidPolicy"
	CodeStaleProxy              Code = "StaleProxy"
	CodeUnprotectedExporter     Code = "UnprotectedExporter"
	CodeUnprotectedMetricsPort  Code = "UnprotectedMetricsPort"
	CodePlainHTTPScrape         Code = "PlainHTTPScrape"
	CodeServiceTargetsAppPort   Code = "ServiceTargetsAppPort"
	CodeProxyCannotReview       Code = "ProxyCannotReview"
	CodeScraperForbidden        Code = "ScraperForbidden"
	CodeCertificateNotReady     Code = "CertificateNotReady"
	CodeClientCATrustsServingCA Code = "ClientCATrustsServingCA"
	CodeForeignTokenAudience    Code = "ForeignTokenAudience"
	CodeUnauthenticatedPath     Code = "UnauthenticatedPath"
)

// CodeInfo is what the docs say of a code.
type CodeInfo struct {
	Code     Code
	Severity Severity
	// Means is one sentence: what is wrong and what it costs.
	Means string
}

// Codes lists every code, in the order the docs table has them.
func Codes() []CodeInfo {
	return []CodeInfo{
		{CodeNotInjected, SeverityError, "a Pod that asks for the proxy (its own label or annotation, or its namespace's label) runs without it: it was created while the webhook was down or before the namespace was labelled, and its port is open to anyone"},
		{CodeInvalidPolicy, SeverityError, "a workload asks for the proxy with annotations the webhook refuses, so the API server denies its new Pods"},
		{CodeStaleProxy, SeverityError, "a Pod runs the proxy from another image than the injector injects now (an upgrade since it started, or a container that only looks like the proxy): the certificate controller no longer ensures its Certificate, and what that image does is not what the injector vouches for"},
		{CodeUnprotectedExporter, SeverityError, "a Pod runs a known GPU or node exporter (the injector's presets' images) with no proxy in front, in a namespace or Pod that never asked for one"},
		{CodeUnprotectedMetricsPort, SeverityWarning, "a Pod has a port named metrics and no proxy in front of it"},
		{CodePlainHTTPScrape, SeverityError, "a ServiceMonitor or PodMonitor scrapes a protected port without https, the scrapers' CA, or credentials: every scrape fails"},
		{CodeServiceTargetsAppPort, SeverityError, "a Service, ServiceMonitor or PodMonitor reaches a protected workload's app port by number in rename mode (a PodMonitor also by naming no port), past the proxy"},
		{CodeProxyCannotReview, SeverityError, "the ServiceAccount of a protected Pod may not create the TokenReviews or SubjectAccessReviews its proxy makes, so every caller is refused"},
		{CodeScraperForbidden, SeverityError, "a scraper named by --scraper may not do what the proxy asks of it (get on the path or the resource attributes), so its scrapes get 403"},
		{CodeCertificateNotReady, SeverityError, "the cert-manager Certificate of a protected workload is missing or not Ready, so its proxy does not start or serves an expired certificate"},
		{CodeClientCATrustsServingCA, SeverityError, "a proxy's client CA is also the CA of serving certificates, which anyone allowed a Certificate from that issuer can get: they could pose as a scraper"},
		{CodeUnauthenticatedPath, SeverityError, "a protected workload's proxy serves the path Prometheus scrapes without authentication or authorization (rbac-proxy.io/ignore-paths matches it): its metrics are open to anyone who reaches the port"},
		{CodeForeignTokenAudience, SeverityError, "a protected workload's proxy takes tokens of an audience that is not its own (another namespace's rbac-proxy:NAMESPACE, or a URL such as the API server's): a scraper that mints its token for that audience hands the workload's owner a token that works elsewhere"},
	}
}
