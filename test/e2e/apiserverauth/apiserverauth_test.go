// Package apiserverauth_test proves the webhook's optional client-certificate check against a real
// kube-apiserver: given an admission configuration (--admission-control-config-file) with a
// kubeconfig for the webhook's address, the API server presents its client certificate and Pods
// are injected, while a caller without that certificate cannot even complete a handshake.
package apiserverauth_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/rbac-proxy/rbac-proxy/internal/testpki"
	"github.com/rbac-proxy/rbac-proxy/test/framework"
	"github.com/rbac-proxy/rbac-proxy/webhook"
	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// apiServerName is the CommonName of the API server's client certificate, the only one the
// webhook accepts.
const apiServerName = "kube-apiserver-webhook-client"

var (
	cp *framework.ControlPlane
	// url is the webhook; clientCA signs the API server's client certificate; servingCA the
	// webhook's serving certificate.
	url                 string
	clientCA, servingCA *testpki.CA
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "rbac-proxy-apiserverauth-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	port, err := portOutsideEphemeralRange()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	host := "127.0.0.1:" + strconv.Itoa(port)
	url = "https://" + host + "/mutate-pods"
	admissionConfig, err := writeAdmissionConfig(dir, host)
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: writing the admission configuration: %v\n", err)
		return 1
	}
	cp, err = framework.Start(ctx, framework.Options{
		// The cert-manager CRDs: the injector's informers watch Certificates.
		CertManager:   true,
		APIServerArgs: map[string][]string{"admission-control-config-file": {admissionConfig}},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: starting the control plane: %v\n", err)
		return 1
	}
	defer func() { _ = cp.Stop() }()
	stop, err := startInjector(ctx, dir, port)
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: starting the injector: %v\n", err)
		cp.DumpLogs(os.Stderr)
		return 1
	}
	defer stop()
	code := m.Run()
	if code != 0 {
		cp.DumpLogs(os.Stderr)
	}
	return code
}

// portOutsideEphemeralRange returns a free port below Linux's ephemeral range (32768 and up). The
// port is written into the API server's configuration long before the webhook binds it, and
// meanwhile the kernel hands ephemeral ports to the tests of other packages running alongside:
// one it would never hand out cannot be taken that way.
func portOutsideEphemeralRange() (int, error) {
	for range 100 {
		port := 20000 + rand.IntN(10000)
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		ln.Close()
		return port, nil
	}
	return 0, fmt.Errorf("no free port in 20000-29999")
}

// writeAdmissionConfig writes the API server's AdmissionConfiguration and the kubeconfig that
// gives its webhook client a certificate for host, as docs/security.md shows.
func writeAdmissionConfig(dir, host string) (string, error) {
	var err error
	if clientCA, err = testpki.NewCA("webhook client CA"); err != nil {
		return "", err
	}
	pair, err := clientCA.Client(apiServerName)
	if err != nil {
		return "", err
	}
	certFile, keyFile, err := pair.Write(dir, "apiserver-client")
	if err != nil {
		return "", err
	}
	kubeconfig := filepath.Join(dir, "webhooks.kubeconfig")
	if err := os.WriteFile(kubeconfig, fmt.Appendf(nil, `apiVersion: v1
kind: Config
users:
- name: %q
  user:
    client-certificate: %s
    client-key: %s
`, host, certFile, keyFile), 0o600); err != nil {
		return "", err
	}
	config := filepath.Join(dir, "admission.yaml")
	return config, os.WriteFile(config, fmt.Appendf(nil, `apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: MutatingAdmissionWebhook
  configuration:
    apiVersion: apiserver.config.k8s.io/v1
    kind: WebhookAdmissionConfiguration
    kubeConfigFile: %s
`, kubeconfig), 0o600)
}

// startInjector runs the injector requiring the API server's client certificate, registers it
// and waits until the API server's Pods come back injected.
func startInjector(ctx context.Context, dir string, port int) (func(), error) {
	var err error
	if servingCA, err = testpki.NewCA("webhook serving CA"); err != nil {
		return nil, err
	}
	serving, err := servingCA.Server("127.0.0.1")
	if err != nil {
		return nil, err
	}
	certDir := filepath.Join(dir, "tls")
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return nil, err
	}
	if _, _, err := serving.Write(certDir, "tls"); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(certDir, "client-ca.crt"), clientCA.CertPEM, 0o600); err != nil {
		return nil, err
	}
	conf := webhook.DefaultConfig("rbac-proxy:e2e")
	conf.DefaultIssuer = "ClusterIssuer/e2e"
	defaults, err := conf.Compile()
	if err != nil {
		return nil, err
	}
	ctrllog.SetLogger(logr.Discard())
	srv, err := webhook.NewServer(cp.Config, defaults, webhook.ServerOptions{
		Host: "127.0.0.1", Port: port, Path: "/mutate-pods",
		CertDir: certDir, CertName: "tls.crt", KeyName: "tls.key",
		ClientCAName: "client-ca.crt", ClientNames: []string{apiServerName},
		HealthAddr: "0", MetricsAddr: "0", MetricsRegistry: prometheus.NewRegistry(),
		ShutdownTimeout: 5 * time.Second,
	}, logr.Discard())
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Run(runCtx)
	}()
	stop := func() { cancel(); <-done }
	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "rbac-proxy-injector"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:                    "namespace.inject.rbac-proxy.io",
			AdmissionReviewVersions: []string{"v1"},
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: servingCA.CertPEM},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			}},
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{inject.LabelInject: inject.NamespaceInjectEnabled}},
		}},
	}
	if err := cp.Client.Create(ctx, mwc); err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}

// The API server, presenting its client certificate, gets its Pods injected.
func TestAPIServerIsServed(t *testing.T) {
	ctx := t.Context()
	ns, err := cp.CreateNamespace(ctx, "served", map[string]string{inject.LabelInject: inject.NamespaceInjectEnabled})
	if err != nil {
		t.Fatal(err)
	}
	err = framework.Eventually(ctx, time.Minute, "a dry-run Pod to come back injected", func(ctx context.Context) (bool, error) {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
			Spec: corev1.PodSpec{ServiceAccountName: "default", Containers: []corev1.Container{{
				Name: "app", Image: "example.com/app:1", Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: 9090}},
			}}},
		}
		if err := cp.Client.Create(ctx, pod, client.DryRunAll); err != nil {
			// The webhook configuration is picked up asynchronously; until then it is "not found",
			// and a refused handshake would say so here for a minute.
			t.Logf("dry-run Pod: %v", err)
			return false, nil
		}
		return inject.IsInjected(pod), nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Anyone else, a forged AdmissionReview's sender, does not get an answer: no certificate, one from
// another CA, or one from the right CA for another name.
func TestOthersAreRefusedAtTheHandshake(t *testing.T) {
	other, err := testpki.NewCA("someone else")
	if err != nil {
		t.Fatal(err)
	}
	cert := func(ca *testpki.CA, cn string) []tls.Certificate {
		pair, err := ca.Client(cn)
		if err != nil {
			t.Fatal(err)
		}
		return []tls.Certificate{pair.TLS()}
	}
	roots := servingCA.Pool()
	for _, tc := range []struct {
		name  string
		certs []tls.Certificate
		ok    bool
	}{
		{"no certificate", nil, false},
		{"another CA", cert(other, apiServerName), false},
		{"another name", cert(clientCA, "system:serviceaccount:team:attacker"), false},
		// The check can fail: the API server's own identity gets an answer.
		{"the API server's certificate", cert(clientCA, apiServerName), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
				TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: tc.certs},
				DialContext:     (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			}}
			resp, err := c.Post(url, "application/json", bytes.NewReader([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x","operation":"CREATE","kind":{"version":"v1","kind":"Pod"},"object":{}}}`)))
			if err == nil {
				resp.Body.Close()
			}
			if got := err == nil && resp.StatusCode == http.StatusOK; got != tc.ok {
				t.Errorf("answered %v (%v), want %v", got, err, tc.ok)
			}
		})
	}
}
