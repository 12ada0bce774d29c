package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"

	logf "github.com/cert-manager/cert-manager/pkg/logs"
)

// runAll runs the cert-manager controllers and the cainjector until ctx is
// cancelled (nil error) or one of them fails.
func runAll(ctx context.Context, o options) error {
	log := logf.Log
	ctx = logf.NewContext(ctx, log)
	ctrl.SetLogger(klog.NewKlogr().WithName("cainjector"))

	restConfig, err := clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	if err != nil {
		return fmt.Errorf("loading kubeconfig %s: %w", o.kubeconfig, err)
	}

	if err := waitForCRDs(ctx, restConfig, o.crdWaitTimeout); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}

	work := func(ctx context.Context) error {
		g, gctx := errgroup.WithContext(ctx)
		g.Go(func() error { return runControllers(gctx, o) })
		g.Go(func() error { return runCAInjector(gctx, restConfig) })
		return g.Wait()
	}

	if o.leaderElect {
		err = runLeaderElected(ctx, restConfig, o, work)
	} else {
		err = work(ctx)
	}
	if ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled)) {
		log.Info("stopped")
		return nil
	}
	if err == nil && ctx.Err() == nil {
		return errors.New("controllers stopped unexpectedly")
	}
	return err
}

// certManagerResources are the resources the controllers and the cainjector
// watch; informers for them cannot sync before the CRDs are served.
var certManagerResources = []string{"certificates", "certificaterequests", "issuers", "clusterissuers"}

// waitForCRDs blocks until the API server serves the cert-manager.io/v1
// resources. timeout 0 waits until ctx is cancelled.
func waitForCRDs(ctx context.Context, cfg *rest.Config, timeout time.Duration) error {
	// A short request timeout keeps SIGTERM responsive while the API server
	// is unreachable.
	dcfg := rest.CopyConfig(cfg)
	dcfg.Timeout = 5 * time.Second
	dc, err := discovery.NewDiscoveryClientForConfig(dcfg)
	if err != nil {
		return err
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	var lastErr error
	lastLog := time.Time{}
	err = wait.PollUntilContextCancel(ctx, time.Second, true, func(context.Context) (bool, error) {
		lastErr = servesAll(dc, "cert-manager.io/v1", certManagerResources)
		if lastErr != nil && time.Since(lastLog) > 10*time.Second {
			lastLog = time.Now()
			logf.Log.Info("waiting for the cert-manager CRDs", "reason", lastErr.Error())
		}
		return lastErr == nil, nil
	})
	if err != nil && lastErr != nil {
		return fmt.Errorf("cert-manager CRDs not served: %w", lastErr)
	}
	return err
}

func servesAll(dc discovery.DiscoveryInterface, groupVersion string, resources []string) error {
	list, err := dc.ServerResourcesForGroupVersion(groupVersion)
	if err != nil {
		return err
	}
	served := map[string]bool{}
	for _, r := range list.APIResources {
		served[r.Name] = true
	}
	for _, r := range resources {
		if !served[r] {
			return fmt.Errorf("%s %s not served", groupVersion, r)
		}
	}
	return nil
}

// runLeaderElected runs work while this process holds the
// cert-manager-controller Lease. Losing the Lease is an error.
func runLeaderElected(ctx context.Context, cfg *rest.Config, o options, work func(context.Context) error) error {
	client, err := kubernetes.NewForConfig(rest.AddUserAgent(cfg, "cert-manager-controller-leader-election"))
	if err != nil {
		return err
	}
	host, err := os.Hostname()
	if err != nil {
		return err
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: o.leaderElectionNamespace, Name: "cert-manager-controller"},
		Client:     client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: host + "_" + string(uuid.NewUUID())},
	}
	leCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var workErr error
	started, done := make(chan struct{}), make(chan struct{})
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   15 * time.Second,
		RenewDeadline:   10 * time.Second,
		RetryPeriod:     2 * time.Second,
		ReleaseOnCancel: true,
		Name:            "cert-manager-controller",
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(lctx context.Context) {
				close(started)
				defer close(done)
				workErr = work(lctx)
				cancel() // give the Lease back and make le.Run return
			},
			OnStoppedLeading: func() {},
		},
	})
	if err != nil {
		return err
	}
	// Run returns once leadership ends or leCtx is cancelled; it runs
	// OnStartedLeading in a goroutine, so wait for the work to stop.
	le.Run(leCtx)
	select {
	case <-started:
		cancel()
		<-done
	default:
	}
	switch {
	case workErr != nil:
		return workErr
	case ctx.Err() != nil:
		return nil
	default:
		return errors.New("leader election lost")
	}
}
