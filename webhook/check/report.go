package check

// APIVersion and Kind identify the JSON form of a Report (check -o json). Fields are only ever
// added to it within one apiVersion; a renamed or removed field or code is a new apiVersion.
const (
	APIVersion = "check.rbac-proxy.io/v1alpha1"
	Kind       = "Report"
)

// Report is what check found, in the order it prints: workloads, findings, what it could not
// check. Lists are sorted (namespace, kind, name, then code) so that two runs over the same
// cluster print the same bytes.
type Report struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Scope      Scope      `json:"scope"`
	Settings   Settings   `json:"settings"`
	Workloads  []Workload `json:"workloads"`
	Findings   []Finding  `json:"findings"`
	// Unchecked are the checks that could not run, and why (most often: no right to read).
	Unchecked []Unchecked `json:"unchecked"`
	Summary   Summary     `json:"summary"`
}

// Scope is what was asked for.
type Scope struct {
	// Namespaces checked; empty with AllNamespaces.
	Namespaces    []string `json:"namespaces,omitempty"`
	AllNamespaces bool     `json:"allNamespaces"`
	// Object is the POD or KIND/NAME argument, empty for every workload.
	Object string `json:"object,omitempty"`
}

// Settings says which injector settings check judged with.
type Settings struct {
	// Source is "Deployment NAMESPACE/NAME" when they are the arguments of the injector's
	// Deployment (with the settings flags given on the command line on top), else "flags": the
	// flags and the built-in defaults.
	Source string `json:"source"`
	// Reason says why the flags were used, or how the Deployment was found when it was not by
	// the Service the injector's webhooks call; empty otherwise.
	Reason string `json:"reason,omitempty"`
}

// SettingsFromFlags is Settings.Source when no Deployment's arguments were used.
const SettingsFromFlags = "flags"

// SettingsFromDeployment is Settings.Source for the arguments of the Deployment namespace/name.
func SettingsFromDeployment(namespace, name string) string {
	return "Deployment " + namespace + "/" + name
}

// ObjectRef names an object as kubectl does: kind (as the API spells it), namespace, name.
type ObjectRef struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// InjectionState says whether a workload's Pods carry the proxy.
type InjectionState string

const (
	// StateInjected: every Pod of the workload runs the proxy.
	StateInjected InjectionState = "injected"
	// StateNotInjected: the workload asks for the proxy, and some of its Pods run without it.
	StateNotInjected InjectionState = "not-injected"
	// StateWouldInject: the workload asks for the proxy and has no Pods yet.
	StateWouldInject InjectionState = "would-inject"
	// StateSkipped: neither the workload nor its namespace asks for the proxy, or it opts out.
	StateSkipped InjectionState = "skipped"
	// StateInvalid: the workload asks for the proxy with annotations the webhook refuses, so its
	// Pods are denied.
	StateInvalid InjectionState = "invalid"
)

// Workload is one workload (Deployment, StatefulSet, DaemonSet, Job, CronJob, or a Pod without
// one) and what the injector does with it.
type Workload struct {
	ObjectRef
	// Pods is how many Pods of the workload were found; Injected how many run the proxy.
	Pods      int       `json:"pods"`
	Injected  int       `json:"injected"`
	Injection Injection `json:"injection"`
	// Policy is the parsed policy, nil when the workload is not injected or its policy is invalid.
	Policy *Policy `json:"policy,omitempty"`
}

// Injection says what decided.
type Injection struct {
	State InjectionState `json:"state"`
	// DecidedBy is the label or annotation that decided, as KEY=VALUE on the object that
	// carries it ("Namespace gpu label rbac-proxy.io/inject=enabled"); empty when nothing asked.
	DecidedBy string `json:"decidedBy,omitempty"`
	Reason    string `json:"reason"`
}

// Policy is the part of the injector's policy an operator reads: where the proxy listens, what
// it asks, what it trusts.
type Policy struct {
	// Mode is rename, takeover or redirect.
	Mode string `json:"mode"`
	// Port is the protected port (its name when it has one, else its number); ProxyPort the
	// port the proxy listens on.
	Port      string `json:"port"`
	ProxyPort int32  `json:"proxyPort"`
	// Preset is the exporter preset that moves the app in takeover mode.
	Preset string `json:"preset,omitempty"`
	// Authz is sar or static; Tenancy is empty or namespace.
	Authz   string `json:"authz"`
	Tenancy string `json:"tenancy,omitempty"`
	// ClientCA is the rbac-proxy.io/client-ca value, empty when client certificates are off.
	ClientCA          string `json:"clientCA,omitempty"`
	TokenVerification string `json:"tokenVerification"`
	// TokenAudiences the proxy requires (local verification), empty when none.
	TokenAudiences []string `json:"tokenAudiences,omitempty"`
	// Certificate is the cert-manager Certificate the injector makes, or empty with TLSSecret.
	Certificate string   `json:"certificate,omitempty"`
	Issuer      string   `json:"issuer,omitempty"`
	DNSNames    []string `json:"dnsNames,omitempty"`
	TLSSecret   string   `json:"tlsSecret"`
	Image       string   `json:"image"`
}

// Severity orders findings; an error makes check exit 1.
type Severity string

const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
	SeverityInfo    Severity = "info"
)

// Finding is one problem, on the object to change, with its fix in one line: a command to run or
// the field to set.
type Finding struct {
	Severity Severity `json:"severity"`
	Code     Code     `json:"code"`
	// Object is what to change (a Service, a ServiceMonitor, a Namespace, the workload itself).
	Object ObjectRef `json:"object"`
	// Workload is the protected (or unprotected) workload the finding is about, when that is not
	// Object.
	Workload *ObjectRef `json:"workload,omitempty"`
	Message  string     `json:"message"`
	Fix      string     `json:"fix"`
}

// Unchecked is a check that could not run.
type Unchecked struct {
	// Check is the code whose rule could not run.
	Check     Code   `json:"check"`
	Namespace string `json:"namespace,omitempty"`
	Reason    string `json:"reason"`
}

// Summary counts the findings by severity.
type Summary struct {
	Errors    int `json:"errors"`
	Warnings  int `json:"warnings"`
	Infos     int `json:"infos"`
	Unchecked int `json:"unchecked"`
}
