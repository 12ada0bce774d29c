package chart

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/rbac-proxy/rbac-proxy/test/framework"
)

const (
	release   = "rbac-proxy"
	releaseNS = "rbac-proxy"
	fullname  = "rbac-proxy-rbac-proxy-injector"
)

// helm install on the real control plane: every object is accepted,
// cert-manager issues the webhook's certificate, cainjector fills the
// caBundle, the webhook (a local process under the chart's configuration)
// injects a Pod, and helm uninstall removes every object it created.
func TestInstallInjectUninstall(t *testing.T) {
	ctx := t.Context()
	injector, err := framework.Build(ctx, "./cmd/webhook")
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	url := fmt.Sprintf("https://localhost:%d/mutate-pods", port)
	out, err := cp.Helm(ctx, "install", release, chartDir, "--namespace", releaseNS, "--create-namespace", "--wait=false",
		"--set", "webhook.url="+url, "--set", "webhook.certificate.extraDNSNames={localhost}")
	if err != nil {
		t.Fatalf("helm install: %v\n%s", err, out)
	}
	rendered := decodeManifest(t, ctx)

	// cert-manager issues the webhook's serving certificate.
	secret := &corev1.Secret{}
	err = framework.Eventually(ctx, 90*time.Second, "the webhook's serving Secret", func(ctx context.Context) (bool, error) {
		err := cp.Client.Get(ctx, client.ObjectKey{Namespace: releaseNS, Name: fullname + "-serving-cert"}, secret)
		return err == nil && len(secret.Data["tls.crt"]) > 0, err
	})
	if err != nil {
		t.Fatal(err)
	}
	// cainjector copies its CA into the webhook configuration.
	err = framework.Eventually(ctx, 60*time.Second, "the caBundle injected by cainjector", func(ctx context.Context) (bool, error) {
		mwc, err := cp.Clientset.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, fullname, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, w := range mwc.Webhooks {
			if !bytes.Equal(w.ClientConfig.CABundle, secret.Data["ca.crt"]) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The chart's CA ClusterIssuer becomes ready: it signs the injected proxies' certificates.
	err = framework.Eventually(ctx, 60*time.Second, "the CA ClusterIssuer to be Ready", func(ctx context.Context) (bool, error) {
		ci := &cmv1.ClusterIssuer{}
		if err := cp.Client.Get(ctx, client.ObjectKey{Name: fullname + "-ca"}, ci); err != nil {
			return false, err
		}
		for _, c := range ci.Status.Conditions {
			if c.Type == cmv1.IssuerConditionReady && c.Status == cmmeta.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Run the webhook as the chart's Deployment would, with the issued certificate.
	certDir := t.TempDir()
	for _, k := range []string{"tls.crt", "tls.key"} {
		if err := os.WriteFile(filepath.Join(certDir, k), secret.Data[k], 0o600); err != nil {
			t.Fatal(err)
		}
	}
	dep := rendered["Deployment/"+fullname]
	args, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	cmdArgs := []string{}
	for _, a := range args[0].(map[string]any)["args"].([]any) {
		s := a.(string)
		switch {
		case strings.HasPrefix(s, "--cert-dir="), strings.HasPrefix(s, "--webhook-port="), strings.HasPrefix(s, "--metrics-bind-address="), strings.HasPrefix(s, "--health-probe-bind-address="):
			continue // replaced below: the local process must not clash with other tests' ports
		}
		cmdArgs = append(cmdArgs, s)
	}
	cmdArgs = append(cmdArgs, "--cert-dir="+certDir, "--webhook-host=127.0.0.1", "--webhook-port="+strconv.Itoa(port),
		"--metrics-bind-address=0", "--health-probe-bind-address=0", "--kubeconfig="+cp.KubeconfigPath)
	var logs bytes.Buffer
	cmd := exec.CommandContext(ctx, injector, cmdArgs...)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("webhook log:\n%s", logs.String())
		}
	})

	// A Pod created afterwards in a labelled namespace gets the proxy.
	ns, err := cp.CreateNamespace(ctx, "gpu", map[string]string{"rbac-proxy.io/inject": "enabled"})
	if err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "dcgm-exporter"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "exporter", Image: "dcgm-exporter:test",
			Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: 9400}},
		}}},
	}
	lastErr := ""
	err = framework.Eventually(ctx, 60*time.Second, "the webhook to admit and inject a Pod", func(ctx context.Context) (bool, error) {
		created := pod.DeepCopy()
		if err := cp.Client.Create(ctx, created); err != nil {
			if err.Error() != lastErr {
				t.Logf("creating the Pod: %v", err) // the webhook may still be starting: Fail policy refuses meanwhile
				lastErr = err.Error()
			}
			return false, err
		}
		pod = created
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !hasProxy(pod) {
		t.Fatalf("the Pod was admitted without the proxy: %+v", pod.Spec)
	}

	// Uninstall leaves none of the chart's objects behind.
	if out, err := cp.Helm(ctx, "uninstall", release, "--namespace", releaseNS, "--wait"); err != nil {
		t.Fatalf("helm uninstall: %v\n%s", err, out)
	}
	for key, obj := range rendered {
		err := framework.Eventually(ctx, 30*time.Second, key+" to be deleted", func(ctx context.Context) (bool, error) {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(obj.GroupVersionKind())
			err := cp.Client.Get(ctx, client.ObjectKeyFromObject(obj), u)
			return apierrors.IsNotFound(err), nil
		})
		if err != nil {
			t.Error(err)
		}
	}
}

// decodeManifest returns what the release installed, by "Kind/name", with
// each object's namespace filled in as helm applied it.
func decodeManifest(t *testing.T, ctx context.Context) map[string]*unstructured.Unstructured {
	t.Helper()
	manifest, err := cp.Helm(ctx, "get", "manifest", release, "--namespace", releaseNS)
	if err != nil {
		t.Fatal(err)
	}
	objs := decode(t, manifest)
	if len(objs) < 10 {
		t.Fatalf("the release holds %d objects, want at least 10", len(objs))
	}
	return objs
}

func hasProxy(pod *corev1.Pod) bool {
	for _, c := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
		if c.Name == "rbac-proxy" {
			return pod.Annotations["rbac-proxy.io/status"] == "injected"
		}
	}
	return false
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
