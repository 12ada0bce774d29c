package check

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The injector's Deployment is found from what only a cluster admin writes: the webhook
// configuration. A Deployment anyone with rights in some namespace can create (labelled like the
// injector, running serve with settings of its choosing) must never decide what check judges
// with: a forged --proxy-image would hide every stale proxy.
const (
	// InjectorLabel is the chart's selector label of the injector's Pods (app.kubernetes.io/name).
	InjectorLabel      = "app.kubernetes.io/name"
	InjectorLabelValue = "rbac-proxy-injector"
	// releaseNamespaceAnnotation is the namespace Helm installed the webhook configuration's
	// release in; injectCAFromAnnotation names the chart's serving Certificate, NAMESPACE/NAME.
	releaseNamespaceAnnotation = "meta.helm.sh/release-namespace"
	injectCAFromAnnotation     = "cert-manager.io/inject-ca-from"
	// serveCommand is the first argument of the injector's webhook container.
	serveCommand = "serve"
)

// InjectorObjects are what ChooseInjector decides from, as ReadInjector reads them.
type InjectorObjects struct {
	// Configs are the cluster's MutatingWebhookConfigurations; ConfigsRefused says why they
	// could not be read (empty when they were).
	Configs        []admissionregistrationv1.MutatingWebhookConfiguration
	ConfigsRefused string
	// Services are those the injector's webhooks call that exist; Deployments those of the
	// namespaces the webhook configurations name (InjectorNamespaces).
	Services    []corev1.Service
	Deployments []appsv1.Deployment
	// Refused are the other reads refused, as reasons.
	Refused []string
}

// injectorWebhooks are the webhooks of the injector (*.inject.rbac-proxy.io), with the
// configuration each is in.
func injectorWebhooks(configs []admissionregistrationv1.MutatingWebhookConfiguration) (hooks []admissionregistrationv1.MutatingWebhook, of []*admissionregistrationv1.MutatingWebhookConfiguration) {
	for i := range configs {
		for _, w := range configs[i].Webhooks {
			if strings.HasSuffix(w.Name, webhookNameSuffix) {
				hooks = append(hooks, w)
				of = append(of, &configs[i])
			}
		}
	}
	return hooks, of
}

// InjectorNamespaces are the namespaces the injector's webhook configurations name, sorted: those
// of the Services their webhooks call, the Helm release's and the serving Certificate's. Only a
// Deployment there can be the injector.
func InjectorNamespaces(configs []admissionregistrationv1.MutatingWebhookConfiguration) []string {
	set := map[string]bool{}
	hooks, of := injectorWebhooks(configs)
	for i, w := range hooks {
		if s := w.ClientConfig.Service; s != nil && s.Namespace != "" {
			set[s.Namespace] = true
		}
		if ns := of[i].Annotations[releaseNamespaceAnnotation]; ns != "" {
			set[ns] = true
		}
		if ns, _, ok := strings.Cut(of[i].Annotations[injectCAFromAnnotation], "/"); ok && ns != "" {
			set[ns] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// ServeArgs are the arguments after `serve` of the Deployment's first container that runs it
// (args [serve, ...], or a command ending in serve), and that container's name.
func ServeArgs(d *appsv1.Deployment) (args []string, container string, ok bool) {
	for _, c := range d.Spec.Template.Spec.Containers {
		if len(c.Args) > 0 && c.Args[0] == serveCommand {
			return c.Args[1:], c.Name, true
		}
		if n := len(c.Command); n > 0 && c.Command[n-1] == serveCommand {
			return c.Args, c.Name, true
		}
	}
	return nil, "", false
}

// ChooseInjector picks the injector's Deployment: the one running serve that the Service of the
// injector's webhooks selects, else, for webhooks that call a URL (the injector runs outside the
// cluster, or behind something else), the one labelled app.kubernetes.io/name=rbac-proxy-injector
// in a namespace the webhook configuration names. Anything else (none, several, no configuration
// to trust) is nil, with the reason; how a Deployment was found is said when it was not by the
// Service.
func ChooseInjector(in InjectorObjects) (*appsv1.Deployment, string) {
	const hint = ": pass --injector=NAMESPACE/NAME or the injector's settings flags"
	if in.ConfigsRefused != "" {
		return nil, in.ConfigsRefused + ", which name the injector's Deployment" + hint
	}
	hooks, _ := injectorWebhooks(in.Configs)
	if len(hooks) == 0 {
		return nil, "no MutatingWebhookConfiguration has a webhook *" + webhookNameSuffix + hint
	}
	serves := func(d *appsv1.Deployment) bool { _, _, ok := ServeArgs(d); return ok }

	// By the Services the webhooks call.
	refs := map[types.NamespacedName]bool{}
	for _, w := range hooks {
		if s := w.ClientConfig.Service; s != nil {
			refs[types.NamespacedName{Namespace: s.Namespace, Name: s.Name}] = true
		}
	}
	var bySvc []string
	chosen := map[string]*appsv1.Deployment{}
	for _, ref := range slices.SortedFunc(maps.Keys(refs), func(a, b types.NamespacedName) int { return strings.Compare(a.String(), b.String()) }) {
		svc := findService(in.Services, ref)
		if svc == nil {
			if r := serviceRefused(ref); slices.Contains(in.Refused, r) {
				bySvc = append(bySvc, r)
			} else {
				bySvc = append(bySvc, "Service "+ref.String()+" not found")
			}
			continue
		}
		if len(svc.Spec.Selector) == 0 {
			bySvc = append(bySvc, "Service "+ref.String()+" has no selector")
			continue
		}
		sel := labels.SelectorFromSet(svc.Spec.Selector)
		n := len(chosen)
		for i := range in.Deployments {
			d := &in.Deployments[i]
			if d.Namespace == ref.Namespace && serves(d) && sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				chosen[d.Namespace+"/"+d.Name] = d
			}
		}
		if len(chosen) == n {
			bySvc = append(bySvc, "Service "+ref.String()+" selects no Deployment running "+serveCommand)
		}
	}
	switch len(chosen) {
	case 0:
	case 1:
		for _, d := range chosen {
			return d, ""
		}
	default:
		return nil, "the Services of the injector's webhooks select several Deployments running " + serveCommand + ": " + strings.Join(slices.Sorted(maps.Keys(chosen)), ", ") + hint
	}

	// By the chart's label, only where the configuration points.
	namespaces := InjectorNamespaces(in.Configs)
	trusted := map[string]bool{}
	for _, ns := range namespaces {
		trusted[ns] = true
	}
	var found, untrusted []string
	var candidate *appsv1.Deployment
	for i := range in.Deployments {
		d := &in.Deployments[i]
		if d.Labels[InjectorLabel] != InjectorLabelValue || !serves(d) {
			continue
		}
		if !trusted[d.Namespace] {
			untrusted = append(untrusted, d.Namespace+"/"+d.Name)
			continue
		}
		found = append(found, d.Namespace+"/"+d.Name)
		candidate = d
	}
	why := "the injector's webhooks call a URL"
	if len(bySvc) > 0 {
		why = strings.Join(bySvc, "; ")
	}
	label := InjectorLabel + "=" + InjectorLabelValue
	switch {
	case len(namespaces) == 0:
		return nil, why + ", and their configuration names no namespace (no Service, no " + releaseNamespaceAnnotation + " or " + injectCAFromAnnotation + " annotation) where a Deployment labelled " + label + " could be trusted" + hint
	case len(found) == 1:
		return candidate, why + "; found by its label " + label + " in namespace " + candidate.Namespace + ", which the webhook configuration names"
	case len(found) > 1:
		return nil, why + "; several Deployments labelled " + label + " run " + serveCommand + ": " + strings.Join(found, ", ") + hint
	}
	reason := why + "; no Deployment labelled " + label + " runs " + serveCommand + " in namespace " + strings.Join(namespaces, ", ")
	if len(untrusted) > 0 {
		reason += " (not trusted, being in a namespace the webhook configuration does not name: " + strings.Join(untrusted, ", ") + ")"
	}
	for _, r := range in.Refused {
		if !slices.Contains(bySvc, r) {
			reason += "; " + r
		}
	}
	return nil, reason + hint
}

// serviceRefused is the refusal to read the Service ref.
func serviceRefused(ref types.NamespacedName) string { return "may not get service " + ref.String() }

func findService(services []corev1.Service, ref types.NamespacedName) *corev1.Service {
	for i := range services {
		if services[i].Namespace == ref.Namespace && services[i].Name == ref.Name {
			return &services[i]
		}
	}
	return nil
}

// ReadInjector reads what ChooseInjector decides from, with the caller's rights: the webhook
// configurations, the Services they call, the Deployments of the namespaces they name. A refusal
// is recorded (the settings then come from the flags, with the reason); any other error is
// returned.
func ReadInjector(ctx context.Context, c client.Reader) (InjectorObjects, error) {
	var in InjectorObjects
	var configs admissionregistrationv1.MutatingWebhookConfigurationList
	if err := c.List(ctx, &configs); apierrors.IsForbidden(err) {
		in.ConfigsRefused = "may not list mutatingwebhookconfigurations"
		return in, nil
	} else if err != nil {
		return in, fmt.Errorf("list mutatingwebhookconfigurations: %w", err)
	}
	in.Configs = configs.Items
	hooks, _ := injectorWebhooks(in.Configs)
	seen := map[types.NamespacedName]bool{}
	for _, w := range hooks {
		s := w.ClientConfig.Service
		if s == nil {
			continue
		}
		ref := types.NamespacedName{Namespace: s.Namespace, Name: s.Name}
		if seen[ref] {
			continue
		}
		seen[ref] = true
		var svc corev1.Service
		switch err := c.Get(ctx, ref, &svc); {
		case err == nil:
			in.Services = append(in.Services, svc)
		case apierrors.IsForbidden(err):
			in.Refused = append(in.Refused, serviceRefused(ref))
		case !apierrors.IsNotFound(err):
			return in, fmt.Errorf("get service %s: %w", ref, err)
		}
	}
	for _, ns := range InjectorNamespaces(in.Configs) {
		var list appsv1.DeploymentList
		switch err := c.List(ctx, &list, client.InNamespace(ns)); {
		case err == nil:
			in.Deployments = append(in.Deployments, list.Items...)
		case apierrors.IsForbidden(err):
			in.Refused = append(in.Refused, "may not list deployments in namespace "+ns)
		default:
			return in, fmt.Errorf("list deployments in namespace %s: %w", ns, err)
		}
	}
	return in, nil
}
