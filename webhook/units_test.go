package webhook

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	testingclock "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

func TestConfigCompile(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string // empty: valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"issuer", func(c *Config) { c.DefaultIssuer = "ClusterIssuer/ca" }, ""},
		{"no image", func(c *Config) { c.ProxyImage = "" }, `proxyImage: Required value`},
		{"pull policy", func(c *Config) { c.ProxyImagePullPolicy = "Sometimes" }, `proxyImagePullPolicy: Unsupported value: "Sometimes": supported values: "Always", "IfNotPresent", "Never"`},
		{"bad issuer", func(c *Config) { c.DefaultIssuer = "ca" }, `defaultIssuer: Invalid value: "ca": not KIND/NAME`},
		{"port", func(c *Config) { c.ProxyPort = 0 }, `proxyPort: Invalid value: 0: must be between 1 and 65535, inclusive`},
		{"endpoints = proxy", func(c *Config) { c.ProxyEndpointsPort = c.ProxyPort }, `proxyEndpointsPort: Invalid value: 8443: must differ from proxyPort`},
		{"mode", func(c *Config) { c.SidecarMode = "ambient" }, `sidecarMode: Unsupported value: "ambient": supported values: "native", "container"`},
		{"verbosity", func(c *Config) { c.ProxyVerbosity = 11 }, `proxyVerbosity: Invalid value: 11: must be between 0 and 10, inclusive`},
		{"domain", func(c *Config) { c.ClusterDomain = "Cluster_Local" }, `clusterDomain: Invalid value: "Cluster_Local"`},
		{"quantity", func(c *Config) { c.Resources.CPURequest = "lots" }, `resources.cpuRequest: Invalid value: "lots"`},
		{"negative", func(c *Config) { c.Resources.MemoryLimit = "-1Mi" }, `resources.memoryLimit: Invalid value: "-1Mi"`},
		{"request above limit", func(c *Config) { c.Resources.MemoryRequest = "1Gi" }, `resources.memoryRequest: Invalid value: "1Gi": must not be above resources.memoryLimit (128Mi)`},
		{"no resources", func(c *Config) { c.Resources = ResourceConfig{} }, ""},
		{"local tokens", func(c *Config) { c.DefaultTokenVerification = "local" }, ""},
		{"token verification", func(c *Config) { c.DefaultTokenVerification = "jwt" }, `defaultTokenVerification: Unsupported value: "jwt": supported values: "review", "local"`},
		{"every error at once", func(c *Config) { c.ProxyPort = 0; c.SidecarMode = ""; c.Resources.CPULimit = "x" },
			`[proxyPort: Invalid value: 0: must be between 1 and 65535, inclusive, sidecarMode: Unsupported value: "": supported values: "native", "container", resources.cpuLimit: Invalid value: "x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig("rbac-proxy:test")
			tc.change(&c)
			d, err := c.Compile()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want == "":
				if d.Image != c.ProxyImage || d.ProxyPort != c.ProxyPort {
					t.Errorf("defaults %+v do not match the config", d)
				}
			case err == nil || !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestAccessCheckerCachesAnswers(t *testing.T) {
	var calls atomic.Int32
	fail := false
	now := testingclock.NewFakeClock(time.Unix(0, 0))
	writer := interceptor.NewClient(fake.NewClientBuilder().Build(), interceptor.Funcs{
		Create: func(_ context.Context, _ client.WithWatch, obj client.Object, _ ...client.CreateOption) error {
			calls.Add(1)
			if fail {
				return errors.New("API down")
			}
			sar := obj.(*authorizationv1.SubjectAccessReview)
			parts := strings.Split(sar.Spec.User, ":")
			if len(parts) != 4 || parts[0]+":"+parts[1] != "system:serviceaccount" || parts[3] != "sa" ||
				strings.Join(sar.Spec.Groups, ",") != "system:serviceaccounts,system:serviceaccounts:"+parts[2]+",system:authenticated" {
				t.Errorf("unexpected subject %s %v", sar.Spec.User, sar.Spec.Groups)
			}
			sar.Status.Allowed = sar.Spec.ResourceAttributes.Resource == "tokenreviews"
			return nil
		},
	})
	a := &AccessChecker{Client: writer, TTL: time.Minute, Clock: now}
	ctx := context.Background()
	missing, err := a.Missing(ctx, "ns", "sa", true)
	if err != nil || len(missing) != 1 || missing[0] != "subjectaccessreviews.authorization.k8s.io" || calls.Load() != 2 {
		t.Fatalf("first check: %v, %v after %d calls", missing, err, calls.Load())
	}
	if _, err := a.Missing(ctx, "ns", "sa", true); err != nil || calls.Load() != 2 {
		t.Fatalf("second check called the API: %d calls, %v", calls.Load(), err)
	}
	if m, _ := a.Missing(ctx, "ns", "sa", false); len(m) != 0 || calls.Load() != 3 {
		t.Fatalf("tokenreviews only: %v after %d calls", m, calls.Load())
	}
	now.Step(2 * time.Minute)
	fail = true
	if _, err := a.Missing(ctx, "ns", "sa", true); err == nil {
		t.Fatal("an API error after expiry was hidden")
	}
	if _, err := a.Missing(ctx, "ns", "sa", true); err == nil {
		t.Fatal("an error was cached as an answer")
	}
	fail = false
	small := &AccessChecker{Client: writer, TTL: time.Minute, MaxEntries: 1}
	small.Missing(ctx, "a", "sa", true)
	small.Missing(ctx, "b", "sa", true)
	if n := len(small.answers.Keys()); n > 1 {
		t.Errorf("%d entries with MaxEntries 1", n)
	}
}

func TestOwnerResolverFallsBackToAPI(t *testing.T) {
	scheme := NewScheme()
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web-1", UID: "rs-uid",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: "d-uid", Controller: ptr.To(true)}}}}
	empty := fake.NewClientBuilder().WithScheme(scheme).Build()
	var live atomic.Int32
	api := interceptor.NewClient(fake.NewClientBuilder().WithScheme(scheme).WithObjects(rs).Build(), interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			live.Add(1)
			return c.Get(ctx, key, obj, opts...)
		},
	})
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "web-1-", OwnerReferences: []metav1.OwnerReference{
		{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-1", UID: "rs-uid", Controller: ptr.To(true)}}}}

	w, err := (&OwnerResolver{Cache: empty, API: api}).Resolve(context.Background(), pod, "ns")
	if err != nil || w.Kind != "Deployment" || w.Name != "web" || w.UID != "d-uid" || live.Load() != 1 {
		t.Fatalf("with fallback: %+v, %v, %d live reads", w, err, live.Load())
	}
	w, err = (&OwnerResolver{Cache: empty}).Resolve(context.Background(), pod, "ns")
	if err != nil || w.Kind != "ReplicaSet" {
		t.Fatalf("without fallback: %+v, %v", w, err)
	}
	broken := interceptor.NewClient(empty, interceptor.Funcs{Get: func(context.Context, client.WithWatch, client.ObjectKey, client.Object, ...client.GetOption) error {
		return apierrors.NewServiceUnavailable("down")
	}})
	if _, err := (&OwnerResolver{Cache: broken}).Resolve(context.Background(), pod, "ns"); err == nil {
		t.Fatal("a cache error was hidden")
	}
	bare := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "job-x-"}}
	if w, _ := (&OwnerResolver{Cache: broken}).Resolve(context.Background(), bare, "ns"); w.Kind != "Pod" || w.Name != "job-x" || w.OwnerReference() != nil {
		t.Fatalf("bare Pod: %+v", w)
	}
	if _, ok := walkedKind(metav1.OwnerReference{APIVersion: "example.com/v1", Kind: "ReplicaSet"}); ok {
		t.Error("a ReplicaSet of another group is walked")
	}
	if gvk, ok := walkedKind(metav1.OwnerReference{APIVersion: "batch/v1", Kind: "Job"}); !ok || gvk != (schema.GroupVersionKind{Group: "batch", Version: "v1", Kind: "Job"}) {
		t.Error("a Job is not walked")
	}
}

// Several webhook replicas admitting Pods of one workload at once create one Certificate: the
// losers' AlreadyExists counts as success.
func TestCertificateEnsureRaces(t *testing.T) {
	store := fake.NewClientBuilder().WithScheme(NewScheme()).Build()
	empty := fake.NewClientBuilder().WithScheme(NewScheme()).Build() // a cache that has not seen it
	var creates atomic.Int32
	writer := interceptor.NewClient(store, interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			creates.Add(1)
			return c.Create(ctx, obj, opts...)
		},
	})
	e := &CertificateEnsurer{Cache: empty, Client: writer}
	desired := NewCertificate(&inject.CertificatePolicy{Name: "rbac-proxy-deployment-web", Issuer: inject.IssuerRef{Kind: "Issuer", Group: "cert-manager.io", Name: "ca"}, DNSNames: []string{"web"}},
		"ns", inject.Workload{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: "uid"})
	var wg sync.WaitGroup
	results := make([]EnsureResult, 8)
	errs := make([]error, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = e.Ensure(context.Background(), desired)
		}()
	}
	wg.Wait()
	created := 0
	for i := range results {
		if errs[i] != nil {
			t.Fatalf("replica %d: %v", i, errs[i])
		}
		if results[i] == CertificateCreated {
			created++
		}
	}
	var list cmapi.CertificateList
	if err := store.List(context.Background(), &list); err != nil {
		t.Fatal(err)
	}
	if created != 1 || len(list.Items) != 1 || creates.Load() != 8 {
		t.Fatalf("%d created, %d stored, %d create calls", created, len(list.Items), creates.Load())
	}
	failing := interceptor.NewClient(store, interceptor.Funcs{Create: func(context.Context, client.WithWatch, client.Object, ...client.CreateOption) error {
		return apierrors.NewForbidden(schema.GroupResource{Group: "cert-manager.io", Resource: "certificates"}, "x", errors.New("no RBAC"))
	}})
	if _, err := (&CertificateEnsurer{Cache: empty, Client: failing}).Ensure(context.Background(), desired); err == nil {
		t.Fatal("a refused create was hidden")
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.observe(OutcomeInjected, time.Millisecond)
	m.observe(OutcomeInjected, time.Millisecond)
	m.observe(OutcomeDenied, time.Millisecond)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	latencySeries := 0
	for _, f := range families {
		for _, metric := range f.GetMetric() {
			switch f.GetName() {
			case "rbac_proxy_injector_injections_total":
				counts[metric.GetLabel()[0].GetValue()] = metric.GetCounter().GetValue()
			case "rbac_proxy_injector_admission_duration_seconds":
				latencySeries++
			}
		}
	}
	if counts["injected"] != 2 || counts["denied"] != 1 {
		t.Errorf("counts %v", counts)
	}
	if v, ok := counts["skipped"]; !ok || v != 0 {
		t.Errorf("skipped is not exported at 0: %v", counts)
	}
	if latencySeries != 2 {
		t.Errorf("%d latency series, want 2", latencySeries)
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Error("registering twice succeeded")
	}
	var nilMetrics *Metrics
	nilMetrics.observe(OutcomeError, 0) // must not panic
}

func TestCompileAllowLists(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Config)
		// err is a substring of the error, empty when the config is valid.
		err string
	}{
		{"issuers", func(c *Config) {
			c.AllowedIssuers = []string{"Issuer/*", "ClusterIssuer/team-ca", "VaultIssuer.vault.example.com/m"}
		}, ""},
		{"bad issuer", func(c *Config) { c.AllowedIssuers = []string{"ClusterIssuer"} }, `allowedIssuers[0]: Invalid value: "ClusterIssuer"`},
		{"cluster-wide wildcard", func(c *Config) { c.AllowedIssuers = []string{"ClusterIssuer/*"} }, `allowedIssuers[0]: Invalid value: "ClusterIssuer/*"`},
		{"suffix", func(c *Config) { c.AllowedDNSSuffixes = []string{"gpu.corp.example", ".metrics.example.org"} }, ""},
		{"top-level suffix", func(c *Config) { c.AllowedDNSSuffixes = []string{"com"} }, `allowedDNSSuffixes[0]: Invalid value: "com"`},
		{"cluster suffix", func(c *Config) { c.AllowedDNSSuffixes = []string{"svc.cluster.local"} }, `allowedDNSSuffixes[0]: Invalid value: "svc.cluster.local"`},
		{"cluster domain suffix", func(c *Config) { c.AllowedDNSSuffixes = []string{"cluster.local"} }, "never by suffix"},
		{"namespace zone", func(c *Config) { c.AllowedDNSSuffixes = []string{"kube-system.svc"} }, "never by suffix"},
		{"bad suffix", func(c *Config) { c.AllowedDNSSuffixes = []string{"*.corp.example"} }, `allowedDNSSuffixes[0]: Invalid value: "*.corp.example"`},
		{"scrapers secret", func(c *Config) { c.ScrapersCASecret = "rbac-proxy/scrapers-ca" }, ""},
		{"scrapers secret without namespace", func(c *Config) { c.ScrapersCASecret = "scrapers-ca" }, `scrapersCASecret: Invalid value: "scrapers-ca"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig()
			tc.change(&c)
			_, err := c.Compile()
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("error %v, want one containing %q", err, tc.err)
			}
		})
	}
}
