package check

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/rbac-proxy/rbac-proxy/webhook"
	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// assessed is a workload and what the webhook does with it: its decision and policy, computed
// by the webhook's own functions from the workload's Pod template (a bare Pod's own metadata
// and spec), as the certificate controller reads them.
type assessed struct {
	*workload
	// subject is the template as a Pod, in the workload's namespace.
	subject  *corev1.Pod
	nsLabels map[string]string
	nsKnown  bool
	// excluded: the injector's webhooks leave the namespace out.
	excluded bool
	// nsAssumed: the Namespace's labels are unknown and taken to enable injection, since the
	// workload's Pods carry the proxy and nothing else of it asks.
	nsAssumed bool
	decision  webhook.Decision
	decideErr error
	policy    *inject.Policy
	policyErr error
	// runningErr says why the policy of an injected Pod standing for its workload could not be
	// read from its proxy.
	runningErr error
	state      InjectionState
	reason     string
	injected   int
}

func (a *analysis) assess(w *workload) *assessed {
	x := &assessed{workload: w}
	x.nsLabels, x.nsKnown = a.snap.namespaceLabels(w.ref.Namespace)
	x.excluded = slices.Contains(a.snap.Excluded, w.ref.Namespace)
	if w.template != nil {
		x.subject = &corev1.Pod{ObjectMeta: *w.template.ObjectMeta.DeepCopy(), Spec: *w.template.Spec.DeepCopy()}
		x.subject.Namespace = w.ref.Namespace
	} else {
		x.subject = w.pods[0]
	}
	for _, p := range w.pods {
		if runsProxy(p) {
			x.injected++
		}
	}
	nsLabels := x.nsLabels
	if d, err := webhook.OptIn(x.subject, nsLabels); !x.nsKnown && err == nil && d.By == "" && x.injected > 0 {
		// The Namespace's labels are unknown, the workload does not ask itself, and its Pods
		// carry the proxy: its Namespace's label is what asked.
		nsLabels, x.nsAssumed = map[string]string{inject.LabelInject: inject.NamespaceInjectEnabled}, true
	}
	if runsProxy(x.subject) {
		// An injected Pod standing for its workload is the render's output, not its input: its
		// policy is the one its proxy runs with.
		x.decision, x.decideErr = webhook.OptIn(x.subject, nsLabels)
		if x.decideErr == nil && (x.decision.Verdict == webhook.VerdictInject || x.nsAssumed) {
			x.policy, x.runningErr = runningPolicy(x.subject, inject.PolicyInput{Defaults: a.c.Defaults, Namespace: w.ref.Namespace, Workload: w.injectWorkload(), NamespaceLabels: nsLabels})
		}
	} else {
		tmpl := w.template
		if tmpl == nil {
			tmpl = &corev1.PodTemplateSpec{ObjectMeta: x.subject.ObjectMeta, Spec: x.subject.Spec}
		}
		sw := &webhook.StoredWorkload{Workload: w.injectWorkload(), Template: tmpl}
		x.decision, x.policy, x.policyErr = webhook.WorkloadPolicy(sw, w.ref.Namespace, a.c.Defaults, nsLabels)
		if x.policyErr != nil && x.decision.Verdict == "" {
			// No decision: the opt-in itself is refused.
			x.decideErr, x.policyErr = x.policyErr, nil
		}
	}
	if x.runningErr != nil {
		for _, code := range runningProxyCodes {
			a.notChecked(code, w.ref.Namespace, fmt.Sprintf("the policy the proxy of %s %s runs with could not be read: %v", w.ref.Kind, w.ref.Name, x.runningErr))
		}
	}
	switch {
	case x.excluded:
		x.state, x.reason, x.policy, x.policyErr, x.decideErr = StateSkipped, "the injector's webhook leaves namespace "+w.ref.Namespace+" out", nil, nil, nil
	case x.decideErr != nil:
		x.state, x.reason = StateInvalid, problemsOf(x.decideErr)
	case x.policyErr != nil:
		x.state, x.reason = StateInvalid, problemsOf(x.policyErr)
	case x.nsAssumed:
		x.state, x.reason = StateInjected, "its Pods carry the proxy, so its Namespace asks for it (the Namespace's labels could not be read)"
		if x.injected < len(w.pods) {
			x.state = StateNotInjected
		}
	case x.decision.Verdict != webhook.VerdictInject:
		x.state, x.reason = StateSkipped, x.decision.Reason
		if !x.nsKnown && x.decision.By == "" {
			x.reason = "the Pod template does not ask for injection, and its Namespace's labels could not be read"
		}
	case len(w.pods) == 0:
		x.state, x.reason = StateWouldInject, x.decision.Reason+"; no Pods yet"
	case x.injected < len(w.pods):
		x.state, x.reason = StateNotInjected, x.decision.Reason
	default:
		x.state, x.reason = StateInjected, x.decision.Reason
	}
	return x
}

// runningProxyCodes are the rules about a running proxy, which apply to protected workloads.
var runningProxyCodes = []Code{CodePlainHTTPScrape, CodeServiceTargetsAppPort, CodeProxyCannotReview, CodeScraperForbidden, CodeCertificateNotReady, CodeClientCATrustsServingCA, CodeForeignTokenAudience}

// protected reports whether Pods of the workload run the proxy, with the policy its template
// gives them: the rules about a running proxy (its rights, its scrapes, its certificates)
// apply.
func (x *assessed) protected() bool {
	return x.policy != nil && x.injected > 0 && (x.state == StateInjected || x.state == StateNotInjected)
}

// decidedBy names the label or annotation that decided on the object that carries it.
func (x *assessed) decidedBy(d webhook.Decision, pod *corev1.Pod) string {
	switch {
	case d.By == "":
		return ""
	case d.ByNamespace:
		return "Namespace " + x.ref.Namespace + " " + d.By
	case pod == nil && x.template != nil:
		return x.ref.Kind + " " + x.ref.Name + " template " + d.By
	case pod == nil:
		pod = x.subject
	}
	return "Pod " + pod.Name + " " + d.By
}

// problemsOf is a policy error's message without the prefix the API server's denial carries.
func problemsOf(err error) string {
	return strings.TrimPrefix(err.Error(), "rbac-proxy: ")
}

// ruleInjection: InvalidPolicy for a workload the webhook would deny, NotInjected for its Pods
// that ask for the proxy and run without it.
func ruleInjection(a *analysis, x *assessed) {
	if x.excluded {
		return
	}
	if err := errors.Join(x.decideErr, x.policyErr); err != nil {
		a.find(CodeInvalidPolicy, x.ref, x, fmt.Sprintf("%s %s asks for the proxy and the webhook denies its Pods: %s", x.ref.Kind, x.ref.Name, problemsOf(err)), x.policyFix(err))
	}
	var missing []string
	var marked []*corev1.Pod
	var why webhook.Decision
	var first *corev1.Pod
	for _, p := range x.pods {
		if runsProxy(p) {
			continue
		}
		// OptIn, not Decide: Decide leaves a Pod with the injector's marks alone.
		d, err := webhook.OptIn(p, x.nsLabels)
		if err != nil || d.Verdict != webhook.VerdictInject {
			continue
		}
		if first == nil {
			first, why = p, d
		}
		missing = append(missing, p.Name)
		marked = append(marked, p)
	}
	if len(missing) == 0 {
		return
	}
	what := x.podsPhrase(missing) + " " + verb(missing, "runs", "run")
	by := x.decidedBy(why, first)
	if by != "" {
		by = " (" + by + ")"
	}
	a.find(CodeNotInjected, x.ref, x, fmt.Sprintf("%s without the proxy: %s%s; created while the webhook was down or before the namespace was labelled%s", what, strings.ToLower(why.Reason[:1])+why.Reason[1:], by, marksNote(marked)), x.restartFix(missing))
}

// runsProxy reports whether the Pod runs the proxy as the injector renders it (of any image:
// StaleProxy judges that): the webhook's own test (inject.RunsProxy, the certificate
// controller's CheckInjectedProxy without the image and Secret), never the marks alone.
func runsProxy(p *corev1.Pod) bool {
	return inject.RunsProxy(p) == ""
}

// marksNote says which of the Pods, counted as not injected, carry the injector's marks (its
// status annotation, a container named rbac-proxy) and how they fall short of its proxy.
func marksNote(pods []*corev1.Pod) string {
	var notes []string
	for _, p := range pods {
		if inject.IsInjected(p) {
			notes = append(notes, "Pod "+p.Name+" carries the injector's marks but not its proxy: it "+inject.RunsProxy(p))
		}
	}
	if len(notes) == 0 {
		return ""
	}
	return "; " + shortList(notes)
}

// templateField is the path of a Pod template field in the workload object (spec.template.f);
// f itself for a bare Pod.
func (x *assessed) templateField(f string) string {
	if x.templatePath != "" {
		return x.templatePath + "." + f
	}
	return f
}

// policyFix names the first annotation to change and what it allows.
func (x *assessed) policyFix(err error) string {
	var pe *inject.PolicyError
	if !errors.As(err, &pe) || len(pe.Errors) == 0 {
		return "fix the " + inject.Prefix + " annotations of the Pod template"
	}
	fe := pe.Errors[0]
	path := x.templateField(fe.Field)
	_, allowed, ok := strings.Cut(fe.Detail, "; allowed: ")
	if !ok {
		return "change " + path
	}
	return "change " + path + " (allowed: " + allowed + ")"
}

// restartFix is how the workload's Pods get the proxy: a rollout restart, or new Pods.
func (x *assessed) restartFix(pods []string) string {
	switch x.ref.Kind {
	case "Deployment", "StatefulSet", "DaemonSet":
		return command("kubectl", "rollout", "restart", strings.ToLower(x.ref.Kind)+"/"+x.ref.Name, "-n", x.ref.Namespace)
	case "Pod":
		return command("kubectl", "delete", "pod", x.ref.Name, "-n", x.ref.Namespace) + ", then create it again"
	}
	return command(append(append([]string{"kubectl", "delete", "pod"}, pods...), "-n", x.ref.Namespace)...) + " (its " + x.ref.Kind + " makes new ones)"
}

// shortList names up to three items, and how many more.
func shortList(items []string) string {
	if len(items) <= 3 {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:3], ", ") + " and " + strconv.Itoa(len(items)-3) + " more"
}

// report is the workload as the report shows it.
func (x *assessed) report() Workload {
	w := Workload{ObjectRef: x.ref, Pods: len(x.pods), Injected: x.injected,
		Injection: Injection{State: x.state, Reason: x.reason}}
	if !x.nsAssumed {
		w.Injection.DecidedBy = x.decidedBy(x.decision, nil)
	}
	if p := x.policy; p != nil && x.state != StateSkipped && x.state != StateInvalid {
		w.Policy = policyView(p, x.subject.Annotations[inject.AnnotationClientCA])
	}
	return w
}

// policyView is the part of the policy the report shows.
func policyView(p *inject.Policy, clientCA string) *Policy {
	v := &Policy{
		Mode: string(p.Mode), Port: p.Target.Name, ProxyPort: p.ProxyPort, Preset: p.Preset,
		Authz: string(p.Authz), Tenancy: string(p.Tenancy), TokenVerification: string(p.TokenVerification),
		TokenAudiences: p.TokenAudiences, TLSSecret: p.TLS.SecretName, Image: p.Image,
	}
	if v.Port == "" {
		v.Port = strconv.Itoa(int(p.Target.Number))
	}
	if p.ClientCA != nil {
		v.ClientCA = clientCA
	}
	if c := p.TLS.Certificate; c != nil {
		v.Certificate, v.Issuer, v.DNSNames = c.Name, c.Issuer.String(), c.DNSNames
	}
	return v
}
