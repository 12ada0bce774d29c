package main

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	controllerpkg "github.com/cert-manager/cert-manager/pkg/controller"
	logf "github.com/cert-manager/cert-manager/pkg/logs"

	// Importing a controller package registers it in controllerpkg.Known().
	crapprover "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/approver"
	crca "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/ca"
	crselfsigned "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/selfsigned"
	certificatesissuing "github.com/cert-manager/cert-manager/pkg/controller/certificates/issuing"
	certificateskeymanager "github.com/cert-manager/cert-manager/pkg/controller/certificates/keymanager"
	certificatesmetrics "github.com/cert-manager/cert-manager/pkg/controller/certificates/metrics"
	certificatesreadiness "github.com/cert-manager/cert-manager/pkg/controller/certificates/readiness"
	certificatesrequestmanager "github.com/cert-manager/cert-manager/pkg/controller/certificates/requestmanager"
	certificatesrevisionmanager "github.com/cert-manager/cert-manager/pkg/controller/certificates/revisionmanager"
	certificatestrigger "github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
	"github.com/cert-manager/cert-manager/pkg/controller/clusterissuers"
	"github.com/cert-manager/cert-manager/pkg/controller/issuers"

	// The issuer backends the (Cluster)Issuer controllers can set up.
	_ "github.com/cert-manager/cert-manager/pkg/issuer/ca"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/selfsigned"
)

// enabledControllers are the cert-manager controllers this binary runs: the
// upstream default set minus ACME, Vault, Venafi and the ingress-shim.
var enabledControllers = []string{
	issuers.ControllerName,
	clusterissuers.ControllerName,
	crapprover.ControllerName,
	crselfsigned.CRControllerName,
	crca.CRControllerName,
	certificatestrigger.ControllerName,
	certificatesissuing.ControllerName,
	certificateskeymanager.ControllerName,
	certificatesrequestmanager.ControllerName,
	certificatesreadiness.ControllerName,
	certificatesrevisionmanager.ControllerName,
	certificatesmetrics.ControllerName,
}

// contextOptions are the cert-manager controller options; the values are the
// upstream defaults (internal/apis/config/controller/v1alpha1/defaults.go)
// except where noted.
func contextOptions(o options) controllerpkg.ContextOptions {
	return controllerpkg.ContextOptions{
		Kubeconfig:         o.kubeconfig,
		KubernetesAPIQPS:   20,
		KubernetesAPIBurst: 50,
		Namespace:          "", // all namespaces
		IssuerOptions: controllerpkg.IssuerOptions{
			ClusterResourceNamespace: o.clusterResourceNamespace,
			// No cloud metadata in tests (upstream default for ClusterIssuers: true).
			ClusterIssuerAmbientCredentials: false,
			IssuerAmbientCredentials:        false,
		},
		IngressShimOptions: controllerpkg.IngressShimOptions{
			DefaultIssuerKind:                 "Issuer",
			DefaultIssuerGroup:                "cert-manager.io",
			DefaultAutoCertificateAnnotations: []string{"kubernetes.io/tls-acme"},
		},
		CertificateOptions: controllerpkg.CertificateOptions{
			EnableOwnerRef:                           o.enableOwnerRef,
			CopiedAnnotationPrefixes:                 []string{"*", "-kubectl.kubernetes.io/", "-fluxcd.io/", "-argocd.argoproj.io/"},
			CertificateRequestMinimumBackoffDuration: time.Hour,
			CertificateRequestMaximumBackoffDuration: 32 * time.Hour,
		},
		ACMEOptions: controllerpkg.ACMEOptions{
			DNS01CheckRetryPeriod: 10 * time.Second,
		},
		SchedulerOptions: controllerpkg.SchedulerOptions{
			MaxConcurrentChallenges: 60,
		},
	}
}

// runControllers builds the enabled cert-manager controllers from one
// ContextFactory, starts the shared informers and runs the controllers until
// ctx is cancelled.
func runControllers(ctx context.Context, o options) error {
	log := logf.FromContext(ctx, "controller")
	ctx = logf.NewContext(ctx, log)

	factory, err := controllerpkg.NewContextFactory(ctx, contextOptions(o))
	if err != nil {
		return fmt.Errorf("building the controller context: %w", err)
	}
	// The root Context shares its informer factories with every controller
	// Context the factory builds.
	root, err := factory.Build()
	if err != nil {
		return fmt.Errorf("building the controller context: %w", err)
	}

	known := controllerpkg.Known()
	type named struct {
		name string
		ctrl controllerpkg.Interface
	}
	var ctrls []named
	for _, name := range enabledControllers {
		constructor, ok := known[name]
		if !ok {
			return fmt.Errorf("controller %q is not registered", name)
		}
		c, err := constructor(factory)
		if err != nil {
			return fmt.Errorf("creating controller %q: %w", name, err)
		}
		ctrls = append(ctrls, named{name, c})
	}

	// Informers are requested by the constructors above; start them afterwards.
	root.SharedInformerFactory.Start(ctx.Done())
	root.KubeSharedInformerFactory.Start(ctx.Done())
	root.HTTP01ResourceMetadataInformersFactory.Start(ctx.Done())
	defer func() {
		root.SharedInformerFactory.Shutdown()
		root.KubeSharedInformerFactory.Shutdown()
		root.HTTP01ResourceMetadataInformersFactory.Shutdown()
	}()

	g, gctx := errgroup.WithContext(ctx)
	for _, c := range ctrls {
		log.Info("starting controller", "controller", c.name)
		g.Go(func() error {
			if err := c.ctrl.Run(o.workers, gctx); err != nil {
				return fmt.Errorf("controller %q: %w", c.name, err)
			}
			return nil
		})
	}
	err = g.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}
