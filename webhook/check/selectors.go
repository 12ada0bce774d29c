package check

import (
	"slices"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// selectorWork counts the selector work of a run, for the test that it grows with the objects,
// not with their pairs.
type selectorWork struct {
	// parses are selectors parsed; matches are label sets a parsed selector was matched against.
	parses, matches int
}

// selectorIndex finds the objects (by their index in the snapshot's list) whose selector picks a
// label set in a namespace: each selector is parsed once, and filed under the namespaces it
// looks in and one of its matchLabels pairs, so that a lookup matches only the selectors that
// can pick the set.
type selectorIndex struct {
	work      *selectorWork
	selectors []labels.Selector
	// byNS files the selectors of some namespaces; anyNS those of every namespace.
	byNS  map[string]*pairIndex
	anyNS pairIndex
}

// pairIndex files selectors under one (key, value) pair they require; rest require none.
type pairIndex struct {
	byPair map[[2]string][]int
	rest   []int
}

func newSelectorIndex(work *selectorWork) *selectorIndex {
	return &selectorIndex{work: work, byNS: map[string]*pairIndex{}}
}

// add files the selector of object i, which looks in namespaces (nil: every namespace); anchor
// is a label pair every set it picks has (empty: none known). A nil selector picks nothing.
func (x *selectorIndex) add(i int, sel labels.Selector, namespaces []string, anchor map[string]string) {
	for len(x.selectors) <= i {
		x.selectors = append(x.selectors, nil)
	}
	x.selectors[i] = sel
	if sel == nil {
		return
	}
	file := func(p *pairIndex) {
		if len(anchor) == 0 {
			p.rest = append(p.rest, i)
			return
		}
		k := slices.Min(mapKeys(anchor))
		if p.byPair == nil {
			p.byPair = map[[2]string][]int{}
		}
		p.byPair[[2]string{k, anchor[k]}] = append(p.byPair[[2]string{k, anchor[k]}], i)
	}
	if namespaces == nil {
		file(&x.anyNS)
		return
	}
	for _, ns := range slices.Compact(slices.Sorted(slices.Values(namespaces))) {
		if x.byNS[ns] == nil {
			x.byNS[ns] = &pairIndex{}
		}
		file(x.byNS[ns])
	}
}

// lookup lists, in order, the objects whose selector picks the labels l in namespace ns.
func (x *selectorIndex) lookup(ns string, l map[string]string) []int {
	var candidates []int
	for _, p := range []*pairIndex{x.byNS[ns], &x.anyNS} {
		if p == nil {
			continue
		}
		candidates = append(candidates, p.rest...)
		for k, v := range l {
			candidates = append(candidates, p.byPair[[2]string{k, v}]...)
		}
	}
	slices.Sort(candidates)
	var out []int
	for _, i := range slices.Compact(candidates) {
		x.work.matches++
		if x.selectors[i].Matches(labels.Set(l)) {
			out = append(out, i)
		}
	}
	return out
}

func mapKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// labelSelector parses a monitor's selector; nil when it is invalid (it picks nothing, as
// prometheus-operator refuses it).
func (w *selectorWork) labelSelector(sel *metav1.LabelSelector) labels.Selector {
	w.parses++
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return nil
	}
	return s
}

// monitorNamespaces are the namespaces a monitor in namespace own looks in; nil: every one.
func monitorNamespaces(own string, nsSel monitoringv1.NamespaceSelector) []string {
	switch {
	case nsSel.Any:
		return nil
	case len(nsSel.MatchNames) > 0:
		return nsSel.MatchNames
	}
	return []string{own}
}

// monitorIndex is what ruleMonitors and ruleServices look objects up in, built once per run.
type monitorIndex struct {
	work selectorWork
	// services by the Pods they select; serviceMonitors by the Services they select, and
	// podMonitors by the Pods.
	services, serviceMonitors, podMonitors *selectorIndex
	// monitorsOf caches the ServiceMonitors that select each Service.
	monitorsOf map[int][]int
}

// index builds the run's monitorIndex on first use.
func (a *analysis) index() *monitorIndex {
	if a.idx != nil {
		return a.idx
	}
	m := &monitorIndex{monitorsOf: map[int][]int{}}
	m.services, m.serviceMonitors, m.podMonitors = newSelectorIndex(&m.work), newSelectorIndex(&m.work), newSelectorIndex(&m.work)
	for i := range a.snap.Services {
		svc := &a.snap.Services[i]
		if len(svc.Spec.Selector) == 0 {
			// A Service without a selector selects no Pods (its endpoints are someone's).
			continue
		}
		m.work.parses++
		m.services.add(i, labels.SelectorFromSet(svc.Spec.Selector), []string{svc.Namespace}, svc.Spec.Selector)
	}
	for i := range a.snap.ServiceMonitors {
		sm := &a.snap.ServiceMonitors[i]
		m.serviceMonitors.add(i, m.work.labelSelector(&sm.Spec.Selector), monitorNamespaces(sm.Namespace, sm.Spec.NamespaceSelector), sm.Spec.Selector.MatchLabels)
	}
	for i := range a.snap.PodMonitors {
		pm := &a.snap.PodMonitors[i]
		m.podMonitors.add(i, m.work.labelSelector(&pm.Spec.Selector), monitorNamespaces(pm.Namespace, pm.Spec.NamespaceSelector), pm.Spec.Selector.MatchLabels)
	}
	a.idx = m
	return m
}

// servicesOf are the Services of namespace ns that select Pods labelled l.
func (m *monitorIndex) servicesOf(ns string, l map[string]string) []int {
	return m.services.lookup(ns, l)
}

// serviceMonitorsOf are the ServiceMonitors that select Service i.
func (m *monitorIndex) serviceMonitorsOf(s *Snapshot, i int) []int {
	if sms, ok := m.monitorsOf[i]; ok {
		return sms
	}
	svc := &s.Services[i]
	sms := m.serviceMonitors.lookup(svc.Namespace, svc.Labels)
	m.monitorsOf[i] = sms
	return sms
}
