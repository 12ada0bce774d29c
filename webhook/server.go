package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsfilters "sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// ServerOptions configure the webhook server: where it listens, its certificate, its endpoints.
type ServerOptions struct {
	// Host and Port of the HTTPS webhook server; Path is the mutating webhook's URL path.
	Host string
	Port int
	Path string
	// CertDir holds CertName and KeyName, reloaded when they change.
	CertDir  string
	CertName string
	KeyName  string
	// ClientCAName, when set, is a CA file in CertDir: the server then requires a client
	// certificate it signed, as the API server presents with an admission kubeconfig
	// (docs/webhook.md). Read once at start.
	ClientCAName string
	// ClientNames, when set, are the only client certificate common names accepted (with
	// ClientCAName).
	ClientNames []string
	// HealthAddr serves /healthz and /readyz, MetricsAddr /metrics; "0" disables either.
	HealthAddr  string
	MetricsAddr string
	// MetricsSecure serves /metrics over HTTPS with the webhook's serving certificate, only to
	// callers the API server authenticates and authorizes for get on /metrics: the injector's
	// own endpoint gets what it gives every exporter.
	MetricsSecure bool
	// MetricsRegistry receives the injector's metrics; nil means controller-runtime's registry,
	// which MetricsAddr serves.
	MetricsRegistry prometheus.Registerer
	// ShutdownTimeout bounds the graceful shutdown.
	ShutdownTimeout time.Duration
	// AccessCheckTTL caches the ServiceAccount checks; 0 turns the check off.
	AccessCheckTTL time.Duration
}

// Server is the injector wired on a controller-runtime manager: informer cache, webhook server,
// health and metrics endpoints, and the Handler.
type Server struct {
	Manager manager.Manager
	Handler *Handler
}

func metadataOf(gvk schema.GroupVersionKind) *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(gvk)
	return m
}

// cachedObjects are what the handler and the certificate controller read: Namespaces (labels),
// ReplicaSets and Jobs (owners) as metadata only, the injected Pods, and the Certificates and
// ConfigMaps the injector manages.
func cachedObjects() []client.Object {
	return []client.Object{
		metadataOf(corev1.SchemeGroupVersion.WithKind("Namespace")),
		metadataOf(appsv1.SchemeGroupVersion.WithKind("ReplicaSet")),
		metadataOf(batchv1.SchemeGroupVersion.WithKind("Job")),
		&cmapi.Certificate{},
		&corev1.Pod{},
		&corev1.ConfigMap{},
	}
}

// canWatchServices asks the API server whether the webhook may list and watch Services in every
// namespace (a SelfSubjectAccessReview, which every authenticated user may create).
func canWatchServices(ctx context.Context, c client.Client) (bool, error) {
	for _, verb := range []string{"list", "watch"} {
		r := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: verb, Resource: "services", Version: "v1"},
		}}
		if err := c.Create(ctx, r); err != nil {
			return false, err
		}
		if !r.Status.Allowed {
			return false, nil
		}
	}
	return true, nil
}

// metricsOptions serves /metrics plain, or with MetricsSecure behind TokenReview and
// SubjectAccessReview (controller-runtime's filter, the API server's delegated authentication
// and authorization, cached) over TLS from the webhook's certificate files, reloaded as they
// rotate.
func metricsOptions(o ServerOptions) metricsserver.Options {
	m := metricsserver.Options{BindAddress: o.MetricsAddr}
	if o.MetricsSecure {
		m.SecureServing = true
		m.CertDir, m.CertName, m.KeyName = o.CertDir, o.CertName, o.KeyName
		m.FilterProvider = metricsfilters.WithAuthenticationAndAuthorization
		m.TLSOpts = []func(*tls.Config){func(c *tls.Config) { c.MinVersion = tls.VersionTLS12 }}
	}
	return m
}

// NewServer wires the injector from explicit options. Nothing runs until Run.
func NewServer(cfg *rest.Config, defaults *inject.Defaults, o ServerOptions, log logr.Logger) (*Server, error) {
	managed := labels.SelectorFromSet(labels.Set{LabelManagedBy: ManagedByValue})
	if len(o.ClientNames) > 0 && o.ClientCAName == "" {
		return nil, errors.New("client names to accept need a client CA to verify them with")
	}
	var tlsOpts []func(*tls.Config)
	if len(o.ClientNames) > 0 {
		tlsOpts = append(tlsOpts, requireClientNames(o.ClientNames))
	}
	// Bounded calls to the API server: a flood of forged AdmissionReviews or of labelled Pods
	// must not turn the injector into a load on it (controller-runtime sets no limit).
	cfg = rest.CopyConfig(cfg)
	if cfg.QPS <= 0 {
		cfg.QPS, cfg.Burst = 50, 100
	}
	mgr, err := manager.New(cfg, manager.Options{
		Scheme: NewScheme(),
		Logger: log,
		Cache: cache.Options{
			ByObject: map[client.Object]cache.ByObject{
				&cmapi.Certificate{}: {Label: managed, Transform: trimCertificate},
				// Only the scrapers' CA ConfigMaps, by name too: anyone may set the label.
				&corev1.ConfigMap{}: {Label: managed, Field: fields.OneTermEqualSelector("metadata.name", inject.ScrapersCAConfigMap)},
				// Only injected Pods, and of them only what the certificate controller checks.
				&corev1.Pod{}: {Label: labels.SelectorFromSet(labels.Set{inject.LabelStatus: inject.StatusInjected}), Transform: trimPod},
			},
			// Nothing reads managedFields: dropping them shrinks the caches and every read's
			// copy. An Update without them leaves the server's as they were.
			DefaultTransform: cache.TransformStripManagedFields(),
		},
		WebhookServer: ctrlwebhook.NewServer(ctrlwebhook.Options{
			Host:         o.Host,
			Port:         o.Port,
			CertDir:      o.CertDir,
			CertName:     o.CertName,
			KeyName:      o.KeyName,
			ClientCAName: o.ClientCAName,
			TLSOpts:      tlsOpts,
		}),
		Metrics:                 metricsOptions(o),
		HealthProbeBindAddress:  o.HealthAddr,
		GracefulShutdownTimeout: ptr.To(o.ShutdownTimeout),
	})
	if err != nil {
		return nil, fmt.Errorf("creating the manager: %w", err)
	}
	reg := o.MetricsRegistry
	if reg == nil {
		reg = ctrlmetrics.Registry
	}
	metrics, err := NewMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("registering metrics: %w", err)
	}
	h := &Handler{
		Defaults: defaults,
		Cache:    mgr.GetClient(),
		API:      mgr.GetAPIReader(),
		Owners:   &OwnerResolver{Cache: mgr.GetClient(), API: mgr.GetAPIReader()},
		Metrics:  metrics,
		Log:      log.WithName("injector"),
	}
	certs := &CertificateController{
		Defaults:     defaults,
		Cache:        mgr.GetClient(),
		Workloads:    &WorkloadVerifier{API: mgr.GetAPIReader()},
		Certificates: &CertificateEnsurer{Cache: mgr.GetClient(), Client: mgr.GetClient()},
		Events:       mgr.GetEventRecorder(ManagedByValue),
		Metrics:      metrics,
		Log:          log.WithName("certificates"),
	}
	if ref := defaults.ScrapersCA; ref != nil {
		certs.ScrapersCA = &ScrapersCAPublisher{Source: *ref, API: mgr.GetAPIReader(), Cache: mgr.GetClient(), Client: mgr.GetClient(), Log: log.WithName("scrapers-ca")}
		if err := mgr.Add(certs.ScrapersCA); err != nil {
			return nil, fmt.Errorf("adding the scrapers' CA refresher: %w", err)
		}
	}
	err = builder.ControllerManagedBy(mgr).
		Named("certificates").
		// A Pod's template and owners do not change after creation; a resync revisits it.
		For(&corev1.Pod{}, builder.WithPredicates(predicate.Funcs{UpdateFunc: func(event.UpdateEvent) bool { return false }})).
		Watches(&cmapi.Certificate{}, handler.EnqueueRequestsFromMapFunc(certs.PodsOfCertificate), builder.WithPredicates(predicate.Funcs{
			CreateFunc:  func(event.CreateEvent) bool { return false },
			UpdateFunc:  func(event.UpdateEvent) bool { return false },
			GenericFunc: func(event.GenericEvent) bool { return false },
		})).
		WithOptions(controller.Options{MaxConcurrentReconciles: 4, SkipNameValidation: ptr.To(true)}).
		Complete(certs)
	if err != nil {
		return nil, fmt.Errorf("setting up the certificate controller: %w", err)
	}
	if o.AccessCheckTTL > 0 {
		h.Access = &AccessChecker{Client: mgr.GetClient(), TTL: o.AccessCheckTTL}
	}
	hookLog := log.WithName("webhook")
	mgr.GetWebhookServer().Register(o.Path, &admission.Webhook{
		Handler:      h,
		RecoverPanic: ptr.To(true),
		LogConstructor: func(_ logr.Logger, req *admission.Request) logr.Logger {
			return admission.DefaultLogConstructor(hookLog, req)
		},
	})

	// Informers start with the manager; asking for them now makes them part of the start
	// instead of the first request.
	objs := cachedObjects()
	switch ok, err := canWatchServices(context.Background(), mgr.GetClient()); {
	case err != nil:
		log.Error(err, "checking access to Services; rename-mode warnings about Services are off")
	case !ok:
		log.Info("the webhook may not list and watch Services; rename-mode warnings about Services that bypass the proxy are off (grant list, watch on services)")
	default:
		h.Services = mgr.GetClient()
		objs = append(objs, &corev1.Service{})
	}
	for _, obj := range objs {
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
	return &Server{Manager: mgr, Handler: h}, nil
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

// Run serves until ctx is cancelled, then shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	return s.Manager.Start(ctx)
}
