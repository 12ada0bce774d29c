package check

import (
	"context"
	"fmt"
	"sort"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// Gather reads what the rules need from the cluster, with the caller's rights: a read the API
// server refuses is recorded in Snapshot.Denied, an API that is not served (prometheus-operator's
// or cert-manager's CRDs not installed) is nothing to check. Any other error ends the run:
// a check that silently skipped what it could not read would report a healthy cluster.
func Gather(ctx context.Context, c client.Reader, d *inject.Defaults, scope Scope) (*Snapshot, error) {
	g := &gatherer{c: c, d: d, snap: &Snapshot{Scope: scope}}
	if !scope.AllNamespaces && len(scope.Namespaces) != 1 {
		return nil, fmt.Errorf("check reads one namespace or all of them, not %d", len(scope.Namespaces))
	}
	if !scope.AllNamespaces {
		g.namespace = scope.Namespaces[0]
	}
	if err := g.namespaces(ctx); err != nil {
		return nil, err
	}
	s := g.snap
	for _, r := range reads {
		if r.list == nil {
			continue
		}
		list := r.list()
		served, err := g.list(ctx, r.resource, g.namespace, list)
		if err != nil {
			return nil, err
		}
		if !served && r.resource == "certificates" {
			s.NoCertificateAPI = true
		}
		r.keep(s, list)
	}
	if err := g.monitors(ctx); err != nil {
		return nil, err
	}
	if scope.AllNamespaces && !g.namespacesListed {
		g.namespacesSeen()
	}
	if err := g.clientCAs(ctx); err != nil {
		return nil, err
	}
	if err := g.excluded(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// excluded reads the injector's webhook configurations for the namespaces they leave out.
// Without the right to, every namespace is taken as served: no check is lost, a Pod of a
// namespace left out may be reported as one the webhook would inject (docs/webhook.md says so).
func (g *gatherer) excluded(ctx context.Context) error {
	var list admissionregistrationv1.MutatingWebhookConfigurationList
	err := g.c.List(ctx, &list)
	if apierrors.IsForbidden(err) {
		return nil
	}
	if _, err := g.classify(err, "mutatingwebhookconfigurations", "", "list"); err != nil {
		return err
	}
	names := make([]string, len(g.snap.Namespaces))
	for i, ns := range g.snap.Namespaces {
		names[i] = ns.Name
	}
	g.snap.Excluded = excludedNamespaces(list.Items, names)
	return nil
}

type gatherer struct {
	c    client.Reader
	d    *inject.Defaults
	snap *Snapshot
	// namespace is the one namespace read, empty for all.
	namespace        string
	namespacesListed bool
}

// list lists resource in namespace (empty: all) into list. served is false when the API does
// not exist; a refusal is recorded and returns served true.
func (g *gatherer) list(ctx context.Context, resource, namespace string, list client.ObjectList) (served bool, err error) {
	err = g.c.List(ctx, list, client.InNamespace(namespace))
	return g.classify(err, resource, namespace, "list")
}

// classify sorts a read's error: nil when it is fine to go on (served false when the API is not
// there), and records a refusal.
func (g *gatherer) classify(err error, resource, namespace, verb string) (served bool, fatal error) {
	switch {
	case err == nil:
		return true, nil
	case apierrors.IsForbidden(err):
		g.snap.Denied = append(g.snap.Denied, Denied{Resource: resource, Namespace: namespace, Reason: fmt.Sprintf("may not %s %s%s", verb, resource, in(namespace))})
		return true, nil
	case meta.IsNoMatchError(err) || apierrors.IsNotFound(err) && verb == "list":
		return false, nil
	}
	return false, fmt.Errorf("%s %s%s: %w", verb, resource, in(namespace), err)
}

// in is " in namespace NS", or " in any namespace" for a cluster-wide read.
func in(namespace string) string {
	if namespace == "" {
		return " in any namespace"
	}
	return " in namespace " + namespace
}

// namespaces reads the labels of the namespace checked, or of every namespace.
func (g *gatherer) namespaces(ctx context.Context) error {
	if g.namespace != "" {
		ns := &corev1.Namespace{}
		err := g.c.Get(ctx, types.NamespacedName{Name: g.namespace}, ns)
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("namespace %s not found", g.namespace)
		}
		if apierrors.IsForbidden(err) {
			g.snap.Denied = append(g.snap.Denied, Denied{Resource: "namespaces", Reason: "may not get namespace " + g.namespace})
		} else if err != nil {
			return fmt.Errorf("get namespace %s: %w", g.namespace, err)
		}
		g.snap.Namespaces = []Namespace{{Name: g.namespace, Labels: ns.Labels, LabelsKnown: err == nil}}
		return nil
	}
	var list corev1.NamespaceList
	err := g.c.List(ctx, &list)
	if _, err := g.classify(err, "namespaces", "", "list"); err != nil {
		return err
	}
	g.namespacesListed = err == nil
	for _, ns := range list.Items {
		g.snap.Namespaces = append(g.snap.Namespaces, Namespace{Name: ns.Name, Labels: ns.Labels, LabelsKnown: true})
	}
	return nil
}

// namespacesSeen stands in for a Namespace list the caller may not read: the namespaces of the
// objects read, labels unknown.
func (g *gatherer) namespacesSeen() {
	seen := map[string]bool{}
	add := func(ns string) {
		if ns != "" && !seen[ns] {
			seen[ns] = true
			g.snap.Namespaces = append(g.snap.Namespaces, Namespace{Name: ns})
		}
	}
	for _, p := range g.snap.Pods {
		add(p.Namespace)
	}
	for _, t := range templates(g.snap) {
		add(t.namespace)
	}
	sort.Slice(g.snap.Namespaces, func(i, j int) bool { return g.snap.Namespaces[i].Name < g.snap.Namespaces[j].Name })
}

// monitors reads ServiceMonitors and PodMonitors: of every namespace, since one in another
// namespace (a monitoring namespace) may select the Services and Pods checked; with one
// namespace checked and no right to read them all, those of that namespace alone, and the
// others are recorded as refused.
func (g *gatherer) monitors(ctx context.Context) error {
	sms, pms := &monitoringv1.ServiceMonitorList{}, &monitoringv1.PodMonitorList{}
	defer func() { g.snap.ServiceMonitors, g.snap.PodMonitors = sms.Items, pms.Items }()
	for _, m := range []struct {
		resource string
		list     client.ObjectList
	}{
		{"servicemonitors", sms},
		{"podmonitors", pms},
	} {
		err := g.c.List(ctx, m.list)
		if apierrors.IsForbidden(err) && g.namespace != "" {
			g.snap.Denied = append(g.snap.Denied, Denied{Resource: m.resource + otherNamespaces, Namespace: g.namespace,
				Reason: "may not list " + m.resource + " in other namespaces, where one could select this namespace's Services or Pods"})
			err = g.c.List(ctx, m.list, client.InNamespace(g.namespace))
			if _, err := g.classify(err, m.resource, g.namespace, "list"); err != nil {
				return err
			}
		} else if _, err := g.classify(err, m.resource, "", "list"); err != nil {
			return err
		}
	}
	return nil
}

// otherNamespaces marks the refusal to read monitors outside the one namespace checked.
const otherNamespaces = " of other namespaces"
