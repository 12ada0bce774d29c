package webhook

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// ScrapersCAPublisher keeps the scrapers' CA certificate in the ConfigMap ScrapersCAConfigMap of
// each namespace whose Pods trust it, as kube-root-ca.crt is kept for the API server's CA: the
// proxy mounts it, and nobody copies it by hand.
//
// It publishes the first certificate of the CA Secret's tls.crt (the CA itself), not its
// ca.crt: when the scrapers' CA is an intermediate, ca.crt is the root above it, which may sign
// far more than scrapers.
type ScrapersCAPublisher struct {
	Source inject.SecretRef
	// API reads the CA Secret live; Cache reads the ConfigMaps the injector manages.
	API    client.Reader
	Cache  client.Reader
	Client client.Writer
	Log    logr.Logger
}

// Ensure makes the namespace's ConfigMap hold the CA certificate.
func (p *ScrapersCAPublisher) Ensure(ctx context.Context, namespace string) (EnsureResult, error) {
	caPEM, err := p.certificate(ctx)
	if err != nil {
		return "", err
	}
	current := &corev1.ConfigMap{}
	err = p.Cache.Get(ctx, types.NamespacedName{Namespace: namespace, Name: inject.ScrapersCAConfigMap}, current)
	switch {
	case apierrors.IsNotFound(err):
		cm := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: namespace,
				Name:      inject.ScrapersCAConfigMap,
				Labels:    map[string]string{LabelManagedBy: ManagedByValue},
			},
			Data: map[string]string{inject.CAKey: string(caPEM)},
		}
		if err := p.Client.Create(ctx, cm); err != nil {
			if apierrors.IsAlreadyExists(err) {
				// Made a moment ago by another replica, or by someone else without the label
				// (the cache sees only labelled ones): look at it before trusting it.
				existing := &corev1.ConfigMap{}
				if err := p.API.Get(ctx, types.NamespacedName{Namespace: namespace, Name: inject.ScrapersCAConfigMap}, existing); err != nil {
					return "", fmt.Errorf("reading ConfigMap %s/%s: %w", namespace, inject.ScrapersCAConfigMap, err)
				}
				if existing.Labels[LabelManagedBy] != ManagedByValue {
					return "", refused("ConfigMap %s/%s exists and is not the injector's (label %s=%s); the injector leaves it alone and the Pods that trust the scrapers' CA do not start", namespace, inject.ScrapersCAConfigMap, LabelManagedBy, ManagedByValue)
				}
				return CertificateExists, nil
			}
			return "", fmt.Errorf("creating ConfigMap %s/%s: %w", namespace, inject.ScrapersCAConfigMap, err)
		}
		return CertificateCreated, nil
	case err != nil:
		return "", fmt.Errorf("reading ConfigMap %s/%s: %w", namespace, inject.ScrapersCAConfigMap, err)
	}
	if current.Labels[LabelManagedBy] != ManagedByValue {
		return "", refused("ConfigMap %s/%s exists and is not the injector's (label %s=%s); the injector leaves it alone and the Pods that trust the scrapers' CA do not start", namespace, inject.ScrapersCAConfigMap, LabelManagedBy, ManagedByValue)
	}
	if current.Data[inject.CAKey] == string(caPEM) && len(current.Data) == 1 && len(current.BinaryData) == 0 {
		return CertificateExists, nil
	}
	updated := current.DeepCopy()
	updated.Data = map[string]string{inject.CAKey: string(caPEM)}
	updated.BinaryData = nil
	if err := p.Client.Update(ctx, updated); err != nil {
		return "", fmt.Errorf("updating ConfigMap %s/%s: %w", namespace, inject.ScrapersCAConfigMap, err)
	}
	return CertificateUpdated, nil
}

// certificate reads the CA certificate from the Secret and checks that it is a CA.
func (p *ScrapersCAPublisher) certificate(ctx context.Context) ([]byte, error) {
	secret := &corev1.Secret{}
	if err := p.API.Get(ctx, types.NamespacedName{Namespace: p.Source.Namespace, Name: p.Source.Name}, secret); err != nil {
		return nil, fmt.Errorf("reading the scrapers' CA Secret %s: %w", p.Source, err)
	}
	return scrapersCAFrom(secret.Data[corev1.TLSCertKey], p.Source)
}

// scrapersCAFrom returns the first certificate of tlsCrt as PEM, when it is a CA certificate.
func scrapersCAFrom(tlsCrt []byte, source inject.SecretRef) ([]byte, error) {
	block, _ := pem.Decode(tlsCrt)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("the scrapers' CA Secret %s has no PEM certificate in %s", source, corev1.TLSCertKey)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing the certificate in %s of the scrapers' CA Secret %s: %w", corev1.TLSCertKey, source, err)
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("the certificate in %s of the scrapers' CA Secret %s (%s) is not a CA certificate", corev1.TLSCertKey, source, cert.Subject)
	}
	var out bytes.Buffer
	if err := pem.Encode(&out, &pem.Block{Type: "CERTIFICATE", Bytes: block.Bytes}); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// RefreshInterval is how often Start brings every published ConfigMap in line with the CA
// Secret, so a rotated scrapers' CA reaches the proxies without any Pod being created.
const RefreshInterval = 5 * time.Minute

// Start refreshes the published ConfigMaps every RefreshInterval until ctx ends (a
// controller-runtime Runnable).
func (p *ScrapersCAPublisher) Start(ctx context.Context) error {
	t := time.NewTicker(RefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := p.refresh(ctx); err != nil {
				p.Log.Error(err, "refreshing the scrapers' CA ConfigMaps")
			}
		}
	}
}

// refresh updates every ConfigMap the injector published.
func (p *ScrapersCAPublisher) refresh(ctx context.Context) error {
	var list corev1.ConfigMapList
	if err := p.Cache.List(ctx, &list, client.MatchingLabels{LabelManagedBy: ManagedByValue}); err != nil {
		return fmt.Errorf("listing the scrapers' CA ConfigMaps: %w", err)
	}
	var errs []error
	for _, cm := range list.Items {
		if cm.Name != inject.ScrapersCAConfigMap {
			continue
		}
		// One namespace that fails (an immutable ConfigMap) must not hold the rotation back in
		// the others.
		res, err := p.Ensure(ctx, cm.Namespace)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if res == CertificateUpdated {
			p.Log.Info("scrapers' CA ConfigMap updated", "namespace", cm.Namespace)
		}
	}
	return errors.Join(errs...)
}
