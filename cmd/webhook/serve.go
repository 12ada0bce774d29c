package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/rbac-proxy/rbac-proxy/webhook"
)

// server is a configured, not yet started, injector.
type server struct {
	mgr     manager.Manager
	handler *webhook.Handler
}

func (o *serveOptions) restConfig() (*rest.Config, error) {
	if o.kubeconfig != "" {
		return clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	}
	return config.GetConfig()
}

// metadataOf is an empty metadata-only object of a kind, for metadata informers.
func metadataOf(gvk schema.GroupVersionKind) *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(gvk)
	return m
}

// cachedObjects are what the handler reads: Namespaces (labels), ReplicaSets and Jobs (owners)
// as metadata only, and the Certificates the webhook manages.
func cachedObjects() []client.Object {
	return []client.Object{
		metadataOf(corev1.SchemeGroupVersion.WithKind("Namespace")),
		metadataOf(appsv1.SchemeGroupVersion.WithKind("ReplicaSet")),
		metadataOf(batchv1.SchemeGroupVersion.WithKind("Job")),
		&cmapi.Certificate{},
	}
}

// newServer wires the manager (cache, webhook server, health and metrics endpoints) and the
// handler from explicit options.
func newServer(o *serveOptions, defaults *webhook.Defaults, cfg *rest.Config, log logr.Logger) (*server, error) {
	managed := labels.SelectorFromSet(labels.Set{webhook.LabelManagedBy: webhook.ManagedByValue})
	mgr, err := manager.New(cfg, manager.Options{
		Scheme: webhook.NewScheme(),
		Logger: log,
		Cache: cache.Options{
			ByObject: map[client.Object]cache.ByObject{&cmapi.Certificate{}: {Label: managed}},
		},
		WebhookServer: ctrlwebhook.NewServer(ctrlwebhook.Options{
			Host:     o.webhookHost,
			Port:     o.webhookPort,
			CertDir:  o.certDir,
			CertName: o.certName,
			KeyName:  o.keyName,
		}),
		Metrics:                 metricsserver.Options{BindAddress: o.metricsAddr},
		HealthProbeBindAddress:  o.healthAddr,
		GracefulShutdownTimeout: ptr.To(o.shutdownTimeout),
	})
	if err != nil {
		return nil, fmt.Errorf("creating the manager: %w", err)
	}
	metrics, err := webhook.NewMetrics(ctrlmetrics.Registry)
	if err != nil {
		return nil, fmt.Errorf("registering metrics: %w", err)
	}
	h := &webhook.Handler{
		Defaults:     defaults,
		Cache:        mgr.GetClient(),
		API:          mgr.GetAPIReader(),
		Owners:       &webhook.OwnerResolver{Cache: mgr.GetClient(), API: mgr.GetAPIReader()},
		Certificates: &webhook.CertificateEnsurer{Cache: mgr.GetClient(), Client: mgr.GetClient()},
		Metrics:      metrics,
		Log:          log.WithName("injector"),
	}
	if o.accessCheckTTL > 0 {
		h.Access = &webhook.AccessChecker{Client: mgr.GetClient(), TTL: o.accessCheckTTL}
	}
	mgr.GetWebhookServer().Register(o.webhookPath, &admission.Webhook{Handler: h, RecoverPanic: ptr.To(true)})

	// Informers start with the manager; asking for them now makes them part of the start
	// instead of the first request.
	for _, obj := range cachedObjects() {
		if _, err := mgr.GetCache().GetInformer(context.Background(), obj); err != nil {
			return nil, fmt.Errorf("preparing the informer for %T: %w", obj, err)
		}
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("webhook", mgr.GetWebhookServer().StartedChecker()); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("informers", cacheSynced(mgr.GetCache())); err != nil {
		return nil, err
	}
	return &server{mgr: mgr, handler: h}, nil
}

// cacheSynced is ready once every informer has synced.
func cacheSynced(c cache.Cache) healthz.Checker {
	return func(req *http.Request) error {
		ctx, cancel := context.WithTimeout(req.Context(), time.Second)
		defer cancel()
		if !c.WaitForCacheSync(ctx) {
			return errors.New("informers not synced")
		}
		return nil
	}
}

// run serves until ctx is cancelled, then shuts down gracefully.
func (s *server) run(ctx context.Context) error {
	return s.mgr.Start(ctx)
}
