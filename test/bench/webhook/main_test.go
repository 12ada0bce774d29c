// Package webhook_test benchmarks rbac-proxy-injector: admission latency in-process (p50/p99,
// API calls per admission) against a real API server's informer cache, and Pods/s created through
// the real API server with and without the webhook in the path.
//
//	KUBEBUILDER_ASSETS=$PWD/bin go test ./test/bench/webhook -run '^$' -bench . -benchtime 2000x
//
// The control plane is started by the first benchmark that needs it, so `go test` without -bench
// starts nothing.
package webhook_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/rbac-proxy/rbac-proxy/internal/testkit"
	"github.com/rbac-proxy/rbac-proxy/internal/testpki"
	"github.com/rbac-proxy/rbac-proxy/test/framework"
	"github.com/rbac-proxy/rbac-proxy/webhook"
	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if env != nil {
		env.stop()
	}
	os.Exit(code)
}

// apiCalls counts the injector's requests to the API server, watches excluded.
type apiCalls struct {
	n    atomic.Int64
	next http.RoundTripper
}

func (c *apiCalls) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Query().Get("watch") != "true" {
		c.n.Add(1)
	}
	return c.next.RoundTrip(req)
}

// benchEnv is a control plane with the injector running against it.
type benchEnv struct {
	cp       *framework.ControlPlane
	server   *webhook.Server
	calls    *apiCalls
	labelled string
	plain    string
	rs       *appsv1.ReplicaSet
	port     int
	stop     func()
}

var (
	env     *benchEnv
	envOnce sync.Once
	envErr  error
)

// setup starts the control plane and the injector once for all benchmarks.
func setup(b *testing.B) *benchEnv {
	b.Helper()
	envOnce.Do(func() { env, envErr = start(context.Background()) })
	if envErr != nil {
		b.Fatal(envErr)
	}
	return env
}

func start(ctx context.Context) (*benchEnv, error) {
	// controller-runtime's own packages (certwatcher, webhook server) log through its global logger.
	ctrllog.SetLogger(logr.Discard())
	cp, err := framework.Start(ctx, framework.Options{CertManager: true})
	if err != nil {
		return nil, err
	}
	e := &benchEnv{cp: cp}
	e.stop = func() { _ = cp.Stop() }
	fail := func(err error) (*benchEnv, error) {
		cp.DumpLogs(os.Stderr)
		e.stop()
		return nil, err
	}

	for _, obj := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench", Labels: map[string]string{inject.LabelInject: inject.NamespaceInjectEnabled}}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench-plain"}},
		// envtest runs no ServiceAccount admission plugin and no controller-manager: the Pods
		// name their ServiceAccount, which must exist.
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: "default"}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "bench-plain", Name: "default"}},
	} {
		if err := cp.Client.Create(ctx, obj); err != nil {
			return fail(err)
		}
	}
	e.labelled, e.plain = "bench", "bench-plain"
	e.rs = &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.labelled, Name: "web-7d4b9c", OwnerReferences: []metav1.OwnerReference{{
			APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: "00000000-0000-0000-0000-000000000001", Controller: ptr.To(true),
		}}},
		Spec: appsv1.ReplicaSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/web:1"}}},
			},
		},
	}
	if err := cp.Client.Create(ctx, e.rs); err != nil {
		return fail(err)
	}

	e.calls = &apiCalls{}
	cfg := rest.CopyConfig(cp.Config)
	cfg.QPS, cfg.Burst = 1000, 2000
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		e.calls.next = rt
		return e.calls
	}
	ca, err := testpki.NewCA("bench")
	if err != nil {
		return fail(err)
	}
	pair, err := ca.Server("127.0.0.1")
	if err != nil {
		return fail(err)
	}
	dir, err := os.MkdirTemp("", "rbac-proxy-injector-bench-")
	if err != nil {
		return fail(err)
	}
	if _, _, err := pair.Write(dir, "tls"); err != nil {
		return fail(err)
	}
	port, err := testkit.FreePort()
	if err != nil {
		return fail(err)
	}
	e.port = port

	conf := webhook.DefaultConfig("rbac-proxy:bench")
	conf.DefaultIssuer = "ClusterIssuer/bench"
	defaults, err := conf.Compile()
	if err != nil {
		return fail(err)
	}
	e.server, err = webhook.NewServer(cfg, defaults, webhook.ServerOptions{
		Host: "127.0.0.1", Port: port, Path: "/mutate-pods",
		CertDir: dir, CertName: "tls.crt", KeyName: "tls.key",
		HealthAddr: "0", MetricsAddr: "0", MetricsRegistry: prometheus.NewRegistry(),
		ShutdownTimeout: 5 * time.Second, AccessCheckTTL: time.Hour,
	}, logr.Discard())
	if err != nil {
		return fail(err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := e.server.Run(runCtx); err != nil {
			fmt.Fprintf(os.Stderr, "injector: %v\n", err)
		}
	}()
	e.stop = func() {
		cancel()
		<-done
		os.RemoveAll(dir)
		_ = cp.Stop()
	}
	syncCtx, syncCancel := context.WithTimeout(ctx, time.Minute)
	defer syncCancel()
	if !e.server.Manager.GetCache().WaitForCacheSync(syncCtx) {
		return fail(fmt.Errorf("the injector's informers did not sync"))
	}
	if err := register(ctx, cp, "https://127.0.0.1:"+strconv.Itoa(port)+"/mutate-pods", ca.CertPEM); err != nil {
		return fail(err)
	}
	return e, nil
}

// register points a MutatingWebhookConfiguration for labelled namespaces at the injector and waits
// until the API server calls it.
func register(ctx context.Context, cp *framework.ControlPlane, url string, caPEM []byte) error {
	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "rbac-proxy-injector"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:                    "namespace.inject.rbac-proxy.io",
			AdmissionReviewVersions: []string{"v1"},
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNoneOnDryRun),
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: caPEM},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			}},
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{inject.LabelInject: inject.NamespaceInjectEnabled}},
		}},
	}
	if err := cp.Client.Create(ctx, mwc); err != nil {
		return err
	}
	return framework.Eventually(ctx, time.Minute, "the API server to call the webhook", func(ctx context.Context) (bool, error) {
		pod := benchPod("bench", nil)
		// A bare Pod needs a name of its own for a Certificate (dry-run: nothing is stored).
		pod.GenerateName, pod.Name = "", "probe"
		if err := cp.Client.Create(ctx, pod, client.DryRunAll); err != nil {
			return false, err
		}
		return inject.IsInjected(pod), nil
	})
}

// benchPod is a Pod of the ReplicaSet rs (when given), with a metrics port.
func benchPod(ns string, rs *appsv1.ReplicaSet) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "web-7d4b9c-", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{
			ServiceAccountName: "default",
			Containers: []corev1.Container{{
				Name:  "app",
				Image: "example.com/web:1",
				Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: 9090, Protocol: corev1.ProtocolTCP}},
			}},
		},
	}
	if rs != nil {
		pod.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(rs, appsv1.SchemeGroupVersion.WithKind("ReplicaSet"))}
	}
	return pod
}
