package check

import (
	"context"
	"sort"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/rbac-proxy/rbac-proxy/webhook"
	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// Checker runs the rules over a Snapshot.
type Checker struct {
	// Defaults are the injector's settings, as serve and inject take them; Settings says where
	// they come from.
	Defaults *inject.Defaults
	Settings Settings
	// Scrapers are the users Prometheus scrapes as (--scraper).
	Scrapers []Scraper
	// Reviews creates the SubjectAccessReviews of the access rules (the only writes check
	// makes); nil skips those rules, which are then reported as not checked.
	Reviews client.Writer
}

// analysis is one run: the snapshot, its workloads as the webhook sees them, what was found.
type analysis struct {
	ctx       context.Context
	c         *Checker
	snap      *Snapshot
	workloads []*assessed
	findings  []Finding
	unchecked []Unchecked
	// access asks the proxies' ServiceAccounts' rights, once per ServiceAccount.
	access *webhook.AccessChecker
	// idx finds Services and monitors by what they select (index builds it).
	idx *monitorIndex
}

// rules run in this order on every workload; each is one file's concern.
var rules = []func(*analysis, *assessed){
	ruleInjection,
	ruleStaleProxy,
	ruleExporters,
	ruleServices,
	ruleMonitors,
	ruleProxyAccess,
	ruleScraperAccess,
	ruleCertificate,
	ruleClientCA,
	ruleTokenAudiences,
	rulePaths,
}

// Check runs every rule and returns the report, sorted, with its summary.
func (c *Checker) Check(ctx context.Context, snap *Snapshot) *Report {
	return c.analyze(ctx, snap).report()
}

// analyze runs every rule.
func (c *Checker) analyze(ctx context.Context, snap *Snapshot) *analysis {
	a := &analysis{ctx: ctx, c: c, snap: snap}
	a.deniedReads()
	if len(c.Scrapers) == 0 {
		a.notChecked(CodeScraperForbidden, "", "no --scraper given: pass --scraper USER (e.g. system:serviceaccount:monitoring:prometheus) for each identity Prometheus scrapes as")
	}
	for _, w := range workloads(snap) {
		a.workloads = append(a.workloads, a.assess(w))
	}
	for _, w := range a.workloads {
		for _, rule := range rules {
			rule(a, w)
		}
	}
	return a
}

// find records a finding of code, with the code's severity.
func (a *analysis) find(code Code, object ObjectRef, w *assessed, message, fix string) {
	f := Finding{Severity: severityOf(code), Code: code, Object: object, Message: message, Fix: fix}
	if w != nil && w.ref != object {
		ref := w.ref
		f.Workload = &ref
	}
	a.findings = append(a.findings, f)
}

// notChecked records that code's rule could not run in namespace.
func (a *analysis) notChecked(code Code, namespace, reason string) {
	a.unchecked = append(a.unchecked, Unchecked{Check: code, Namespace: namespace, Reason: reason})
}

func severityOf(code Code) Severity {
	for _, c := range Codes() {
		if c.Code == code {
			return c.Severity
		}
	}
	panic("check: unknown code " + code)
}

// deniedReads turns each refused read into the checks it keeps from running.
func (a *analysis) deniedReads() {
	for _, d := range a.snap.Denied {
		if d.Resource == "namespaces" {
			for _, ns := range a.snap.Namespaces {
				if !ns.LabelsKnown {
					a.notChecked(CodeNotInjected, ns.Name, d.Reason+", so Pods that would get the proxy by the label "+inject.LabelInject+"="+inject.NamespaceInjectEnabled+" of Namespace "+ns.Name+" cannot be told from those that would not")
				}
			}
			continue
		}
		for _, code := range needs(strings.TrimSuffix(d.Resource, otherNamespaces)) {
			a.notChecked(code, d.Namespace, d.Reason)
		}
	}
}

// report sorts what was found into the Report: lists never nil, so that JSON has [] not null.
func (a *analysis) report() *Report {
	r := &Report{APIVersion: APIVersion, Kind: Kind, Scope: a.snap.Scope, Settings: a.c.Settings, Workloads: []Workload{}, Findings: a.findings, Unchecked: dedupUnchecked(a.unchecked)}
	if r.Findings == nil {
		r.Findings = []Finding{}
	}
	if r.Settings.Source == "" {
		r.Settings.Source = SettingsFromFlags
	}
	for _, w := range a.workloads {
		r.Workloads = append(r.Workloads, w.report())
	}
	sort.SliceStable(r.Findings, func(i, j int) bool {
		x, y := r.Findings[i], r.Findings[j]
		if x.Object != y.Object {
			return lessRef(x.Object, y.Object)
		}
		if x.Code != y.Code {
			return x.Code < y.Code
		}
		return x.Message < y.Message
	})
	r.summarize()
	return r
}

// summarize counts the findings by severity, and what was not checked.
func (r *Report) summarize() {
	r.Summary = Summary{Unchecked: len(r.Unchecked)}
	for _, f := range r.Findings {
		switch f.Severity {
		case SeverityError:
			r.Summary.Errors++
		case SeverityWarning:
			r.Summary.Warnings++
		case SeverityInfo:
			r.Summary.Infos++
		}
	}
}

// dedupUnchecked sorts by check and namespace, and joins the reasons of one check in one
// namespace.
func dedupUnchecked(in []Unchecked) []Unchecked {
	out := []Unchecked{}
	sort.SliceStable(in, func(i, j int) bool {
		if in[i].Check != in[j].Check {
			return in[i].Check < in[j].Check
		}
		return in[i].Namespace < in[j].Namespace
	})
	for _, u := range in {
		if n := len(out); n > 0 && out[n-1].Check == u.Check && out[n-1].Namespace == u.Namespace {
			if !strings.Contains(out[n-1].Reason, u.Reason) {
				out[n-1].Reason += "; " + u.Reason
			}
			continue
		}
		out = append(out, u)
	}
	return out
}

// Filter keeps the workload object names (KIND/NAME as the report spells it) and what was found
// about it; ok is false when the report has no such workload.
func (r *Report) Filter(object ObjectRef) bool {
	var ws []Workload
	for _, w := range r.Workloads {
		if w.ObjectRef == object {
			ws = append(ws, w)
		}
	}
	if len(ws) == 0 {
		return false
	}
	r.Workloads = ws
	fs := []Finding{}
	for _, f := range r.Findings {
		about := f.Object
		if f.Workload != nil {
			about = *f.Workload
		}
		if about == object {
			fs = append(fs, f)
		}
	}
	r.Findings = fs
	r.summarize()
	return true
}
