// Package webhook_test runs rbac-proxy-injector against a real control plane: kube-apiserver calls
// the webhook for every Pod, kube-controller-manager creates the Pods of Deployments and
// garbage-collects, and cert-manager issues the Certificates the webhook creates. The injector runs
// in-process (webhook.NewServer, the same wiring as `serve`) with a ServiceAccount token holding
// only the RBAC rules docs/webhook.md lists.
package webhook_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/go-logr/zapr"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
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

const (
	// issuerName is the webhook's default issuer: a CA ClusterIssuer whose CA cert-manager signed
	// itself (self-signed ClusterIssuer → CA Certificate → CA ClusterIssuer).
	issuerName = "e2e-ca"
	// scrapersIssuer signs scrapers' client certificates only: a CA Issuer in the injector's
	// namespace, on the CA Secret scrapersCASecret.
	scrapersIssuer   = "e2e-scrapers"
	scrapersCASecret = "e2e-scrapers-ca"
	proxyImage       = "rbac-proxy:e2e"
	injectorNS       = "rbac-proxy-system"
	injectorSA       = "rbac-proxy-injector"
	webhookName      = "rbac-proxy-injector"
	enabledLabel     = inject.LabelInject
)

var (
	cp *framework.ControlPlane
	// inj is the running injector.
	inj *injector
)

type injector struct {
	// url and caPEM reach the webhook server directly, as any Pod of the cluster could.
	url      string
	caPEM    []byte
	server   *webhook.Server
	registry *prometheus.Registry
	logs     *framework.LogBuffer
	health   string
	stop     func()
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx := context.Background()
	started, err := framework.Start(ctx, framework.Options{
		ControllerManager: true,
		CertManager:       true,
		// envtest turns the ServiceAccount admission plugin off; a real API server runs it
		// before the webhooks, and what the proxy's token looks like depends on it.
		APIServerArgs: map[string][]string{"disable-admission-plugins": {""}},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: starting the test control plane: %v\n", err)
		return 1
	}
	cp = started
	defer func() {
		if err := cp.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping the control plane: %v\n", err)
		}
	}()
	setupCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	inj, err = startInjector(setupCtx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: starting the injector: %v\n", err)
		if inj != nil {
			fmt.Fprintf(os.Stderr, "===== injector log =====\n%s\n", inj.logs.String())
		}
		cp.DumpLogs(os.Stderr)
		return 1
	}
	code := m.Run()
	inj.stop()
	if code != 0 {
		cp.DumpLogs(os.Stderr)
		fmt.Fprintf(os.Stderr, "===== injector log =====\n%s\n", inj.logs.String())
	}
	return code
}

// startInjector creates the issuers, the injector's ServiceAccount and RBAC, runs the injector
// with that ServiceAccount's token and registers it with the API server.
func startInjector(ctx context.Context) (*injector, error) {
	if err := createIssuers(ctx); err != nil {
		return nil, err
	}
	cfg, err := injectorConfig(ctx)
	if err != nil {
		return nil, err
	}
	if err := createScrapersCA(ctx); err != nil {
		return nil, err
	}

	ca, err := testpki.NewCA("rbac-proxy-injector e2e")
	if err != nil {
		return nil, err
	}
	serving, err := ca.Server("127.0.0.1")
	if err != nil {
		return nil, err
	}
	certDir, err := os.MkdirTemp("", "rbac-proxy-injector-e2e-")
	if err != nil {
		return nil, err
	}
	if _, _, err := serving.Write(certDir, "tls"); err != nil {
		return nil, err
	}
	port, err := testkit.FreePort()
	if err != nil {
		return nil, err
	}
	healthPort, err := testkit.FreePort()
	if err != nil {
		return nil, err
	}

	conf := webhook.DefaultConfig(proxyImage)
	conf.DefaultIssuer = "ClusterIssuer/" + issuerName
	conf.AllowedIssuers = []string{"Issuer/*"}
	conf.ScrapersCASecret = injectorNS + "/" + scrapersCASecret
	defaults, err := conf.Compile()
	if err != nil {
		return nil, err
	}
	logs := &framework.LogBuffer{}
	log := zapr.NewLogger(zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(logs), zapcore.DebugLevel)))
	// controller-runtime's own packages (certwatcher, webhook server) log through its global logger.
	ctrllog.SetLogger(log)
	reg := prometheus.NewRegistry()
	srv, err := webhook.NewServer(cfg, defaults, webhook.ServerOptions{
		Host: "127.0.0.1", Port: port, Path: "/mutate-pods",
		CertDir: certDir, CertName: "tls.crt", KeyName: "tls.key",
		HealthAddr:      "127.0.0.1:" + strconv.Itoa(healthPort),
		MetricsAddr:     "0",
		MetricsRegistry: reg,
		ShutdownTimeout: 10 * time.Second,
		AccessCheckTTL:  time.Minute,
	}, log)
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(runCtx) }()
	in := &injector{
		url: "https://127.0.0.1:" + strconv.Itoa(port) + "/mutate-pods", caPEM: ca.CertPEM,
		server: srv, registry: reg, logs: logs, health: "http://127.0.0.1:" + strconv.Itoa(healthPort),
	}
	in.stop = func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				fmt.Fprintf(os.Stderr, "injector stopped: %v\n", err)
			}
		case <-time.After(30 * time.Second):
			fmt.Fprintln(os.Stderr, "injector did not stop within 30s")
		}
		os.RemoveAll(certDir)
	}

	err = framework.Eventually(ctx, time.Minute, "the injector's /readyz", func(ctx context.Context) (bool, error) {
		select {
		case err := <-done:
			return false, fmt.Errorf("the injector exited: %v", err)
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, in.health+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		in.stop()
		return in, err
	}
	if err := registerWebhook(ctx, in.url, in.caPEM); err != nil {
		in.stop()
		return in, err
	}
	return in, nil
}

// createIssuers builds the default issuer: self-signed ClusterIssuer → CA Certificate → CA
// ClusterIssuer, and waits until the CA ClusterIssuer is ready.
func createIssuers(ctx context.Context) error {
	objs := []client.Object{
		&cmapi.ClusterIssuer{
			ObjectMeta: metav1.ObjectMeta{Name: "e2e-selfsigned"},
			Spec:       cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{SelfSigned: &cmapi.SelfSignedIssuer{}}},
		},
		&cmapi.Certificate{
			ObjectMeta: metav1.ObjectMeta{Namespace: framework.CertManagerNamespace, Name: "e2e-root"},
			Spec: cmapi.CertificateSpec{
				IsCA: true, CommonName: "rbac-proxy e2e root", SecretName: "e2e-root",
				IssuerRef: cmmeta.IssuerReference{Kind: "ClusterIssuer", Name: "e2e-selfsigned"},
			},
		},
		&cmapi.ClusterIssuer{
			ObjectMeta: metav1.ObjectMeta{Name: issuerName},
			Spec:       cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{CA: &cmapi.CAIssuer{SecretName: "e2e-root"}}},
		},
	}
	for _, obj := range objs {
		if err := cp.Client.Create(ctx, obj); err != nil {
			return fmt.Errorf("creating %T %s: %w", obj, obj.GetName(), err)
		}
	}
	return framework.Eventually(ctx, 2*time.Minute, "ClusterIssuer "+issuerName+" ready", func(ctx context.Context) (bool, error) {
		var ci cmapi.ClusterIssuer
		if err := cp.Client.Get(ctx, client.ObjectKey{Name: issuerName}, &ci); err != nil {
			return false, err
		}
		for _, c := range ci.Status.Conditions {
			if c.Type == cmapi.IssuerConditionReady && c.Status == cmmeta.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
}

// createScrapersCA builds the scrapers' CA the chart does, in the injector's namespace: a
// namespaced self-signed Issuer → a CA Certificate → a CA Issuer, and waits until it is ready.
func createScrapersCA(ctx context.Context) error {
	objs := []client.Object{
		&cmapi.Issuer{
			ObjectMeta: metav1.ObjectMeta{Namespace: injectorNS, Name: scrapersIssuer + "-selfsigned"},
			Spec:       cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{SelfSigned: &cmapi.SelfSignedIssuer{}}},
		},
		&cmapi.Certificate{
			ObjectMeta: metav1.ObjectMeta{Namespace: injectorNS, Name: scrapersCASecret},
			Spec: cmapi.CertificateSpec{
				IsCA: true, CommonName: "rbac-proxy e2e scrapers", SecretName: scrapersCASecret,
				IssuerRef: cmmeta.IssuerReference{Kind: "Issuer", Name: scrapersIssuer + "-selfsigned"},
			},
		},
		&cmapi.Issuer{
			ObjectMeta: metav1.ObjectMeta{Namespace: injectorNS, Name: scrapersIssuer},
			Spec:       cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{CA: &cmapi.CAIssuer{SecretName: scrapersCASecret}}},
		},
	}
	for _, obj := range objs {
		if err := cp.Client.Create(ctx, obj); err != nil {
			return fmt.Errorf("creating %T %s: %w", obj, obj.GetName(), err)
		}
	}
	return framework.Eventually(ctx, 2*time.Minute, "Issuer "+scrapersIssuer+" ready", func(ctx context.Context) (bool, error) {
		var is cmapi.Issuer
		if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: injectorNS, Name: scrapersIssuer}, &is); err != nil {
			return false, err
		}
		for _, c := range is.Status.Conditions {
			if c.Type == cmapi.IssuerConditionReady && c.Status == cmmeta.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
}

// injectorRules are the RBAC rules docs/webhook.md lists for the injector (the chart's
// ClusterRole), and nothing more.
func injectorRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"apps"}, Resources: []string{"replicasets"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"apps"}, Resources: []string{"deployments", "daemonsets", "statefulsets"}, Verbs: []string{"get"}},
		{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"batch"}, Resources: []string{"cronjobs"}, Verbs: []string{"get"}},
		{APIGroups: []string{"cert-manager.io"}, Resources: []string{"certificates"}, Verbs: []string{"get", "list", "watch", "create", "update"}},
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch", "create"}},
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{inject.ScrapersCAConfigMap}, Verbs: []string{"update"}},
		{APIGroups: []string{"", "events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
		{APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"subjectaccessreviews"}, Verbs: []string{"create"}},
	}
}

// scrapersCARules let the injector read the scrapers' CA Secret, that one only (the chart's Role
// in the CA's namespace).
func scrapersCARules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{scrapersCASecret}, Verbs: []string{"get"}}}
}

// injectorConfig creates the injector's ServiceAccount with exactly injectorRules and returns a
// client configuration that authenticates as it.
func injectorConfig(ctx context.Context) (*rest.Config, error) {
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: injectorNS}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: injectorSA}, Rules: injectorRules()},
		&rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: injectorSA},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: injectorSA},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: injectorNS, Name: injectorSA}},
		},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: injectorNS, Name: injectorSA + "-scrapers-ca"}, Rules: scrapersCARules()},
		&rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: injectorNS, Name: injectorSA + "-scrapers-ca"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: injectorSA + "-scrapers-ca"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: injectorNS, Name: injectorSA}},
		},
	}
	for _, obj := range objs {
		if err := cp.Client.Create(ctx, obj); err != nil {
			return nil, fmt.Errorf("creating %T %s: %w", obj, obj.GetName(), err)
		}
	}
	token, err := cp.ServiceAccountToken(ctx, injectorNS, injectorSA, nil)
	if err != nil {
		return nil, err
	}
	return &rest.Config{
		Host:            cp.Config.Host,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: cp.Config.CAData, CAFile: cp.Config.CAFile},
		QPS:             50,
		Burst:           100,
	}, nil
}

// registerWebhook creates the MutatingWebhookConfiguration docs/webhook.md shows, pointed at the
// in-process server, and waits until the API server calls it.
func registerWebhook(ctx context.Context, url string, caPEM []byte) error {
	rules := []admissionregistrationv1.RuleWithOperations{{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
		Rule: admissionregistrationv1.Rule{
			APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"},
			Scope: ptr.To(admissionregistrationv1.NamespacedScope),
		},
	}}
	entry := func(name string, ns, obj *metav1.LabelSelector) admissionregistrationv1.MutatingWebhook {
		return admissionregistrationv1.MutatingWebhook{
			Name:                    name,
			AdmissionReviewVersions: []string{"v1"},
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
			ReinvocationPolicy:      ptr.To(admissionregistrationv1.IfNeededReinvocationPolicy),
			TimeoutSeconds:          ptr.To[int32](10),
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: caPEM},
			Rules:                   rules,
			NamespaceSelector:       ns,
			ObjectSelector:          obj,
		}
	}
	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: webhookName},
		Webhooks: []admissionregistrationv1.MutatingWebhook{
			entry("namespace.inject.rbac-proxy.io",
				&metav1.LabelSelector{MatchLabels: map[string]string{enabledLabel: inject.NamespaceInjectEnabled}},
				&metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: enabledLabel, Operator: metav1.LabelSelectorOpNotIn, Values: []string{"false"}}}}),
			entry("pod.inject.rbac-proxy.io",
				&metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: enabledLabel, Operator: metav1.LabelSelectorOpNotIn, Values: []string{inject.NamespaceInjectEnabled}},
					{Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"kube-system", framework.CertManagerNamespace, injectorNS}},
				}},
				&metav1.LabelSelector{MatchLabels: map[string]string{enabledLabel: "true"}}),
		},
	}
	if err := cp.Client.Create(ctx, mwc); err != nil {
		return fmt.Errorf("creating the MutatingWebhookConfiguration: %w", err)
	}
	// The API server picks the configuration up asynchronously: wait until a dry-run Pod in a
	// labelled namespace comes back injected.
	ns, err := cp.CreateNamespace(ctx, "probe", map[string]string{enabledLabel: inject.NamespaceInjectEnabled})
	if err != nil {
		return err
	}
	if err := waitDefaultServiceAccount(ctx, ns); err != nil {
		return err
	}
	return framework.Eventually(ctx, time.Minute, "the API server to call the webhook", func(ctx context.Context) (bool, error) {
		pod := simplePod(ns, "probe")
		if err := cp.Client.Create(ctx, pod, client.DryRunAll); err != nil {
			fmt.Fprintf(os.Stderr, "probe Pod: %v\n", err)
			return false, err
		}
		if !inject.IsInjected(pod) {
			err := fmt.Errorf("the dry-run Pod came back without the proxy: annotations %v, init containers %d", pod.Annotations, len(pod.Spec.InitContainers))
			fmt.Fprintf(os.Stderr, "probe Pod: %v\n", err)
			return false, err
		}
		return true, nil
	})
}

// simplePod is a Pod with one app container and a port named metrics.
func simplePod(ns, name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name:  "app",
			Image: "example.com/app:1",
			Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: 9090}},
		}}},
	}
}

// waitDefaultServiceAccount waits for kube-controller-manager to create the namespace's default
// ServiceAccount; until then the API server refuses Pods that use it.
func waitDefaultServiceAccount(ctx context.Context, ns string) error {
	return framework.Eventually(ctx, 30*time.Second, "the default ServiceAccount of "+ns, func(ctx context.Context) (bool, error) {
		err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "default"}, &corev1.ServiceAccount{})
		return err == nil, client.IgnoreNotFound(err)
	})
}
