package scrapeconfig

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/rbac-proxy/rbac-proxy/webhook"
	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// NotProtectedError says that the webhook does not inject the workload's Pods.
type NotProtectedError struct {
	Workload, Namespace, Reason string
}

func (e *NotProtectedError) Error() string {
	return fmt.Sprintf("%s in namespace %s is not protected by rbac-proxy: %s; rbac-proxy-injector check %s -n %s says what would protect it", e.Workload, e.Namespace, e.Reason, e.Workload, e.Namespace)
}

// Gather reads from the cluster what Describe needs of the workload kind/name: the workload
// and its Namespace's labels, from which its policy is computed as the webhook computes it; the
// namespace's Services, the serving certificate's names, and the workload's Pods. Warnings say
// what is off without stopping the output.
func Gather(ctx context.Context, api client.Reader, d *inject.Defaults, namespace string, kind schema.GroupKind, name string) (in *Input, warnings []string, err error) {
	sw, err := (&webhook.WorkloadVerifier{API: api}).Lookup(ctx, namespace, kind, name)
	if err != nil {
		return nil, nil, err
	}
	what := what(sw.Workload)
	ns := &corev1.Namespace{}
	if err := api.Get(ctx, types.NamespacedName{Name: namespace}, ns); err != nil {
		return nil, nil, fmt.Errorf("reading Namespace %s, whose label may ask for the proxy: %w", namespace, err)
	}
	decision, policy, err := webhook.WorkloadPolicy(sw, namespace, d, ns.Labels)
	switch {
	case err != nil:
		return nil, nil, fmt.Errorf("the webhook, with these settings, refuses the Pods of %s in namespace %s: %w", what, namespace, err)
	case policy == nil:
		return nil, nil, &NotProtectedError{Workload: what, Namespace: namespace, Reason: decision.Reason}
	}
	in = &Input{Workload: sw, Namespace: namespace, Policy: policy}

	services := &corev1.ServiceList{}
	if err := api.List(ctx, services, client.InNamespace(namespace)); err != nil {
		return nil, nil, fmt.Errorf("listing the Services of namespace %s: %w", namespace, err)
	}
	in.Services = services.Items

	names, from, warning, err := servingNames(ctx, api, namespace, policy)
	if err != nil {
		return nil, nil, err
	}
	if warning != "" {
		warnings = append(warnings, warning)
	}
	in.DNSNames, in.NamesFrom = names, from

	pods := &corev1.PodList{}
	if err := api.List(ctx, pods, client.InNamespace(namespace), client.MatchingLabelsSelector{Selector: labels.SelectorFromSet(sw.Template.Labels)}); err != nil {
		return nil, nil, fmt.Errorf("listing the Pods of %s in namespace %s: %w", what, namespace, err)
	}
	// Prometheus sends its credentials to the targets: only to a Pod that runs the injector's
	// proxy with the Secret whose CA it verifies, never to one that only carries its marks (the
	// status annotation, a container named rbac-proxy), which anyone can put on a Pod.
	var outside []string
	for i := range pods.Items {
		p := &pods.Items[i]
		if why := inject.CheckInjectedProxy(p, d, policy.TLS.SecretName); why != "" {
			outside = append(outside, p.Name+" "+why)
			continue
		}
		in.Pods = append(in.Pods, *p)
	}
	if len(outside) > 0 {
		warnings = append(warnings, fmt.Sprintf("%d of the %d Pods of %s run without the injector's proxy and are no target (%s): rbac-proxy-injector check %s -n %s", len(outside), len(pods.Items), what, strings.Join(outside, "; "), what, namespace))
	}
	return in, warnings, nil
}

// servingNames are the DNS names of the proxy's serving certificate, and the object they are
// read from: the injector's Certificate as stored (or, before it exists, as the injector will
// make it), else the Certificate that fills the Pod's own Secret, else the names in that
// Secret's certificate.
func servingNames(ctx context.Context, api client.Reader, namespace string, p *inject.Policy) (names []string, from, warning string, err error) {
	if c := p.TLS.Certificate; c != nil {
		from = "Certificate " + namespace + "/" + c.Name
		cert := &cmapi.Certificate{}
		err := api.Get(ctx, types.NamespacedName{Namespace: namespace, Name: c.Name}, cert)
		switch {
		case err == nil && len(cert.Spec.DNSNames) > 0:
			return cert.Spec.DNSNames, from, "", nil
		case err == nil:
			err = fmt.Errorf("it has no DNS names")
		case apierrors.IsNotFound(err):
			err = fmt.Errorf("it does not exist yet")
		}
		return c.DNSNames, from, fmt.Sprintf("%s: %v; the server name is from the names the injector gives it", from, err), nil
	}
	certs := &cmapi.CertificateList{}
	if err := api.List(ctx, certs, client.InNamespace(namespace)); err == nil {
		for _, c := range certs.Items {
			if c.Spec.SecretName == p.TLS.SecretName && len(c.Spec.DNSNames) > 0 {
				return c.Spec.DNSNames, "Certificate " + namespace + "/" + c.Name, "", nil
			}
		}
	}
	from = "Secret " + namespace + "/" + p.TLS.SecretName
	secret := &corev1.Secret{}
	if err := api.Get(ctx, types.NamespacedName{Namespace: namespace, Name: p.TLS.SecretName}, secret); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, "", "", fmt.Errorf("the serving Secret %s/%s (%s) does not exist, and no Certificate fills it", namespace, p.TLS.SecretName, inject.AnnotationTLSSecret)
		}
		return nil, "", "", fmt.Errorf("reading the serving Secret %s/%s for its certificate's names: %w", namespace, p.TLS.SecretName, err)
	}
	block, _ := pem.Decode(secret.Data[corev1.TLSCertKey])
	if block == nil {
		return nil, "", "", fmt.Errorf("the serving Secret %s/%s has no PEM certificate in %s", namespace, p.TLS.SecretName, corev1.TLSCertKey)
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, "", "", fmt.Errorf("the serving Secret %s/%s: %w", namespace, p.TLS.SecretName, err)
	}
	return leaf.DNSNames, from, "", nil
}
