package check

import (
	"context"
	"maps"
	"slices"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// certificateNameAnnotation marks a Secret cert-manager fills from a Certificate.
const certificateNameAnnotation = "cert-manager.io/certificate-name"

// clientCAs reads the client CA bundles the Pods and templates name, and where there are any,
// the ca.crt of the namespace's serving Secrets. Of a Secret only the ca.crt key is kept.
func (g *gatherer) clientCAs(ctx context.Context) error {
	s := g.snap
	type bundleKey struct {
		namespace string
		source    inject.ClientCASource
		name, key string
	}
	wanted := map[bundleKey]bool{}
	tlsSecrets := map[string]map[string]bool{}
	note := func(namespace string, m *metav1.ObjectMeta) {
		v, ok := m.Annotations[inject.AnnotationClientCA]
		if !ok {
			return
		}
		ca, problem := inject.ParseClientCA(v, g.d)
		if problem != "" {
			return
		}
		wanted[bundleKey{namespace, ca.Source, ca.Name, ca.Key}] = true
		if tlsSecrets[namespace] == nil {
			tlsSecrets[namespace] = map[string]bool{}
		}
		if name := m.Annotations[inject.AnnotationTLSSecret]; name != "" {
			tlsSecrets[namespace][name] = true
		}
	}
	for i := range s.Pods {
		note(s.Pods[i].Namespace, &s.Pods[i].ObjectMeta)
	}
	for _, t := range templates(s) {
		note(t.namespace, &t.template.ObjectMeta)
	}
	keys := make([]ClientCABundle, 0, len(wanted))
	for k := range wanted {
		keys = append(keys, ClientCABundle{Namespace: k.namespace, Source: k.source, Name: k.name, Key: k.key})
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		return a.Namespace+"/"+string(a.Source)+"/"+a.Name+"/"+a.Key < b.Namespace+"/"+string(b.Source)+"/"+b.Name+"/"+b.Key
	})
	for _, k := range keys {
		var err error
		key := types.NamespacedName{Namespace: k.Namespace, Name: k.Name}
		resource := "configmaps"
		if k.Source == inject.ClientCASecret {
			resource = "secrets"
			var sec corev1.Secret
			if err = g.c.Get(ctx, key, &sec); err == nil {
				k.PEM, k.Found = sec.Data[k.Key]
			}
		} else {
			var cm corev1.ConfigMap
			if err = g.c.Get(ctx, key, &cm); err == nil {
				var v string
				v, k.Found = cm.Data[k.Key]
				k.PEM = []byte(v)
			}
		}
		if apierrors.IsNotFound(err) {
			s.ClientCAs = append(s.ClientCAs, k)
			continue
		}
		if _, err := g.classify(err, resource, k.Namespace, "get"); err != nil {
			return err
		}
		if err == nil {
			s.ClientCAs = append(s.ClientCAs, k)
		}
	}
	for _, ns := range slices.Sorted(maps.Keys(tlsSecrets)) {
		if err := g.servingCAs(ctx, ns, tlsSecrets[ns]); err != nil {
			return err
		}
	}
	return nil
}

// servingCAs reads the ca.crt of the namespace's cert-manager Secrets, and of the Secrets named
// in extra: their names from a metadata list, so that no other Secret's data is ever fetched.
func (g *gatherer) servingCAs(ctx context.Context, namespace string, extra map[string]bool) error {
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("SecretList"))
	err := g.c.List(ctx, list, client.InNamespace(namespace))
	if _, err := g.classify(err, "secrets", namespace, "list"); err != nil || g.snap.denied("secrets", namespace) {
		return err
	}
	names := map[string]string{}
	for name := range extra {
		names[name] = ""
	}
	for _, m := range list.Items {
		if cert, ok := m.Annotations[certificateNameAnnotation]; ok {
			names[m.Name] = cert
		}
	}
	for _, name := range slices.Sorted(maps.Keys(names)) {
		var sec corev1.Secret
		err := g.c.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, &sec)
		if apierrors.IsNotFound(err) {
			continue
		}
		if _, err := g.classify(err, "secrets", namespace, "get"); err != nil {
			return err
		}
		if ca := sec.Data[inject.CAKey]; err == nil && len(ca) > 0 {
			g.snap.ServingCAs = append(g.snap.ServingCAs, ServingCA{Namespace: namespace, Secret: name, Certificate: names[name], CA: ca})
		}
	}
	return nil
}
