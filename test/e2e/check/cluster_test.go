package check

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/rbac-proxy/rbac-proxy/test/framework"
	"github.com/rbac-proxy/rbac-proxy/webhook"
	webhookcheck "github.com/rbac-proxy/rbac-proxy/webhook/check"
	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// cluster is what the tests share: the chart installed and upgraded once, the workloads of every
// failure mode in place.
type cluster struct {
	// bin is rbac-proxy-injector, built from this checkout.
	bin string
	// client reads and writes ServiceMonitors and Certificates beside the built-in types.
	client client.Client
	// settings are the injector's settings flags as the upgraded injector runs with them: what
	// an operator passes to check so that it judges by the injector's defaults.
	settings []string
	// proxyImage is the image the upgraded injector injects.
	proxyImage string
	// Namespaces: gpu is labelled rbac-proxy.io/inject=enabled from the start, late only after
	// its Pods were created, plain never.
	gpu, late, plain, monitoring string
	// scraper is Prometheus' identity, allowed get on /metrics and nothing more.
	scraper string
	// injectorLog is the tail of the upgraded injector's log, for a failing test.
	injectorLog func() string
}

var shared struct {
	once sync.Once
	c    *cluster
	err  error
}

// setup builds the cluster once for every test of the package; the first test that asks waits.
func setup(t *testing.T) *cluster {
	t.Helper()
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
		defer cancel()
		start := time.Now()
		shared.c, shared.err = newCluster(ctx)
		t.Logf("cluster set up in %s", time.Since(start).Round(100*time.Millisecond))
	})
	if shared.err != nil {
		if shared.c != nil && shared.c.injectorLog != nil {
			t.Logf("injector log:\n%s", shared.c.injectorLog())
		}
		t.Fatalf("setting up the cluster: %v", shared.err)
	}
	t.Cleanup(func() {
		if t.Failed() && shared.c.injectorLog != nil {
			t.Logf("injector log:\n%s", shared.c.injectorLog())
		}
	})
	return shared.c
}

const (
	// exporterSA is the ServiceAccount of the protected workloads, bound to system:auth-delegator.
	exporterSA = "exporter"
	// scraperSA is Prometheus' ServiceAccount in the monitoring namespace.
	scraperSA = "prometheus"
)

func newCluster(ctx context.Context) (*cluster, error) {
	c := &cluster{}
	s, err := webhookcheck.NewScheme()
	if err != nil {
		return nil, err
	}
	if c.client, err = client.New(cp.Config, client.Options{Scheme: s}); err != nil {
		return nil, err
	}

	// The binary, the CRDs and the namespaces do not wait for each other.
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		c.bin, err = framework.Build(gctx, "./cmd/webhook")
		return err
	})
	g.Go(func() error { return cp.InstallPrometheusOperatorCRDs(gctx) })
	for _, ns := range []struct {
		name   *string
		prefix string
		labels map[string]string
	}{
		{&c.gpu, "gpu", map[string]string{inject.LabelInject: inject.NamespaceInjectEnabled}},
		{&c.late, "late", nil},
		{&c.plain, "plain", nil},
		{&c.monitoring, "monitoring", nil},
	} {
		g.Go(func() (err error) {
			*ns.name, err = cp.CreateNamespace(gctx, ns.prefix, ns.labels)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return c, err
	}
	c.scraper = "system:serviceaccount:" + c.monitoring + ":" + scraperSA
	if err := c.createRBAC(ctx); err != nil {
		return c, err
	}
	// The late namespace's Pods exist before the webhook does anything with it.
	if err := c.createLate(ctx); err != nil {
		return c, err
	}

	// Issuer/* lets a Pod name an Issuer of its own namespace, one that may not exist.
	inj, err := cp.InstallChart(ctx, c.bin, "allowedIssuers={Issuer/*}")
	if err != nil {
		return c, fmt.Errorf("installing the chart: %w", err)
	}
	c.injectorLog = inj.Log
	// A Pod injected by this release runs a proxy the next one no longer injects.
	if err := c.createStale(ctx); err != nil {
		return c, err
	}
	if err := c.upgradeInjector(ctx, inj); err != nil {
		return c, err
	}
	if err := c.labelLate(ctx); err != nil {
		return c, err
	}
	if err := c.createWorkloads(ctx); err != nil {
		return c, err
	}
	return c, c.waitSettled(ctx)
}

// createRBAC binds the protected workloads' ServiceAccounts to system:auth-delegator (their
// proxies make TokenReviews and SubjectAccessReviews) and lets the scraper get /metrics.
func (c *cluster) createRBAC(ctx context.Context) error {
	var subjects []rbacv1.Subject
	objs := []client.Object{}
	for _, ns := range []string{c.gpu, c.late} {
		objs = append(objs, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: exporterSA}})
		subjects = append(subjects, rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: exporterSA})
	}
	objs = append(objs,
		&rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "e2e-check-exporters-auth-delegator"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:auth-delegator"},
			Subjects:   subjects,
		},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: c.monitoring, Name: scraperSA}},
		&rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{Name: "e2e-check-metrics-reader"},
			Rules:      []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}},
		},
		&rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "e2e-check-metrics-reader"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "e2e-check-metrics-reader"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: c.monitoring, Name: scraperSA}},
		},
	)
	return c.create(ctx, objs...)
}

// create creates every object, in order.
func (c *cluster) create(ctx context.Context, objs ...client.Object) error {
	for _, obj := range objs {
		if err := c.client.Create(ctx, obj); err != nil {
			return fmt.Errorf("creating %T %s/%s: %w", obj, obj.GetNamespace(), obj.GetName(), err)
		}
	}
	return nil
}

// settingArgs keeps of the injector's arguments its settings flags (webhook.Config's), the ones
// check takes as inject and serve do.
func settingArgs(args []string) []string {
	flags := map[string]bool{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			if f.Type.Kind() == reflect.Struct {
				walk(f.Type)
			} else if name := f.Tag.Get("flag"); name != "" {
				flags[name] = true
			}
		}
	}
	walk(reflect.TypeFor[webhook.Config]())
	var out []string
	for _, a := range args {
		name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if strings.HasPrefix(a, "--") && flags[name] {
			out = append(out, a)
		}
	}
	return out
}
