package webhook_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/rbac-proxy/rbac-proxy/internal/testkit"
	"github.com/rbac-proxy/rbac-proxy/internal/testpki"
	"github.com/rbac-proxy/rbac-proxy/test/framework"
)

// The rbac-proxy-injector binary: `serve` with its flags answers an AdmissionReview over HTTPS,
// reports it on /metrics (HTTPS, to callers allowed get on /metrics only), is ready on /readyz,
// picks up a new serving certificate (on both) without a
// restart, and exits cleanly on SIGTERM.
func TestServeBinary(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	bin := filepath.Join(dir, "rbac-proxy-injector")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/rbac-proxy/rbac-proxy/cmd/webhook")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building rbac-proxy-injector: %v\n%s", err, out)
	}

	certDir := filepath.Join(dir, "tls")
	if err := os.Mkdir(certDir, 0o700); err != nil {
		t.Fatal(err)
	}
	first := writeServingCert(t, certDir, "first CA")
	var ports [3]int
	for i := range ports {
		p, err := testkit.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = p
	}
	hook, health, metrics := ports[0], ports[1], ports[2]
	logs := &framework.LogBuffer{}
	cmd := exec.Command(bin, "serve",
		"--kubeconfig", cp.KubeconfigPath,
		"--webhook-host", "127.0.0.1", "--webhook-port", strconv.Itoa(hook),
		"--cert-dir", certDir,
		"--health-probe-bind-address", "127.0.0.1:"+strconv.Itoa(health),
		"--metrics-bind-address", "127.0.0.1:"+strconv.Itoa(metrics),
		"--default-issuer", "ClusterIssuer/"+issuerName,
		"--proxy-image", "registry.example/rbac-proxy:v1",
		"--graceful-shutdown-timeout", "5s",
	)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("rbac-proxy-injector log:\n%s", logs.String())
		}
	}()

	healthURL := "http://127.0.0.1:" + strconv.Itoa(health)
	err := framework.Eventually(ctx, time.Minute, "serve's /readyz", func(ctx context.Context) (bool, error) {
		select {
		case err := <-exited:
			t.Fatalf("serve exited: %v", err)
		default:
		}
		return httpStatus(ctx, healthURL+"/readyz") == http.StatusOK, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if code := httpStatus(ctx, healthURL+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d", code)
	}

	// An AdmissionReview as the API server sends it, dry-run so nothing is created.
	ns := labelledNamespace(t, "serve")
	pod := simplePod("", "served")
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	review, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: "serve-test", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			Namespace: ns, Name: "served", Operation: admissionv1.Create, DryRun: ptr.To(true),
			Object: runtime.RawExtension{Raw: raw},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	hookURL := "https://127.0.0.1:" + strconv.Itoa(hook) + "/mutate-pods"
	resp, err := httpsClient(first).Post(hookURL, "application/json", bytes.NewReader(review))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var answer admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &answer); err != nil || answer.Response == nil {
		t.Fatalf("answer %s: %v", body, err)
	}
	if !answer.Response.Allowed || !strings.Contains(string(answer.Response.Patch), "registry.example/rbac-proxy:v1") {
		t.Errorf("answer: allowed=%v patch=%s", answer.Response.Allowed, answer.Response.Patch)
	}

	// /metrics is HTTPS with the serving certificate, for callers allowed get on /metrics only.
	metricsURL := "https://127.0.0.1:" + strconv.Itoa(metrics) + "/metrics"
	metricsBody := checkMetricsAccess(t, metricsURL, first)
	for _, want := range []string{
		`rbac_proxy_injector_injections_total{outcome="injected"} 1`,
		`rbac_proxy_injector_admission_duration_seconds_count{outcome="injected"} 1`,
		`controller_runtime_webhook_requests_total{code="200",webhook="/mutate-pods"} 1`,
	} {
		if !strings.Contains(metricsBody, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// A renewed serving certificate is served without a restart.
	second := writeServingCert(t, certDir, "second CA")
	err = framework.Eventually(ctx, 30*time.Second, "serve to present the renewed certificate", func(ctx context.Context) (bool, error) {
		conn, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(hook), &tls.Config{RootCAs: second})
		if err != nil {
			return false, nil
		}
		conn.Close()
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = framework.Eventually(ctx, 30*time.Second, "/metrics to present the renewed certificate", func(ctx context.Context) (bool, error) {
		resp, err := httpsClient(second).Get(metricsURL)
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusUnauthorized, nil
	})
	if err != nil {
		t.Fatal(err)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("serve exited with %v after SIGTERM", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop within 20s of SIGTERM")
	}
	if !strings.Contains(logs.String(), `"stopped"`) {
		t.Errorf("no clean stop in the log")
	}
}

// writeServingCert writes a new CA's serving certificate for 127.0.0.1 into dir (tls.crt, tls.key)
// and returns a pool trusting that CA.
func writeServingCert(t *testing.T, dir, name string) *x509.CertPool {
	t.Helper()
	ca, err := testpki.NewCA(name)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.Server("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	// Write beside and rename, as a Secret volume update does, so the server never reads half a file.
	tmp := t.TempDir()
	if _, _, err := pair.Write(tmp, "tls"); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"tls.key", "tls.crt"} {
		if err := os.Rename(filepath.Join(tmp, f), filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	return ca.Pool()
}

func httpsClient(roots *x509.CertPool) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
}

func httpStatus(ctx context.Context, url string) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// checkMetricsAccess: plain HTTP gets no metrics; over HTTPS a caller without a token gets 401,
// a ServiceAccount without the right 403, a forged token 500, and one bound to get on /metrics
// the metrics, which it returns.
func checkMetricsAccess(t *testing.T, url string, roots *x509.CertPool) string {
	t.Helper()
	ctx := t.Context()
	if resp, err := http.Get("http" + strings.TrimPrefix(url, "https")); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), "rbac_proxy_injector") {
			t.Fatalf("plain HTTP got the metrics: %d", resp.StatusCode)
		}
	}
	ns := cp.TestNamespace(t, "metrics")
	allowed := cp.TestToken(t, ns, "prometheus")
	other := cp.TestToken(t, ns, "other")
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: ns + "-metrics-reader"},
		Rules:      []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}},
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "prometheus"}},
	}
	for _, o := range []client.Object{role, binding} {
		if err := cp.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), o) })
	}
	get := func(token string) (int, string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := httpsClient(roots).Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct {
		who, token string
		code       int
	}{
		{"no token", "", http.StatusUnauthorized},
		// controller-runtime's filter answers a token the TokenReview refuses with an error
		// as 500 "Authentication failed": refused all the same.
		{"a forged token", allowed[:len(allowed)-4] + "AAAA", http.StatusInternalServerError},
		{"a ServiceAccount without the right", other, http.StatusForbidden},
	} {
		if code, body := get(tc.token); code != tc.code || strings.Contains(body, "rbac_proxy_injector") {
			t.Errorf("/metrics with %s: %d, want %d (%.80q)", tc.who, code, tc.code, body)
		}
	}
	// The binding reaches the API server's authorizer at once; the filter caches no denial
	// of this user, who has not asked before.
	code, body := get(allowed)
	if code != http.StatusOK {
		t.Fatalf("/metrics with the allowed ServiceAccount: %d %.200q", code, body)
	}
	return body
}
