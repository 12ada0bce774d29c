package framework

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/rbac-proxy/rbac-proxy/internal/testkit"
)

// The release the tests and the demo install the chart as.
const (
	ChartDir         = "charts/rbac-proxy-injector"
	ReleaseName      = "rbac-proxy"
	ReleaseNamespace = "rbac-proxy"
	// ReleaseFullname is the chart's base name for that release.
	ReleaseFullname = "rbac-proxy-rbac-proxy-injector"
	// DefaultIssuer is the CA ClusterIssuer the chart creates by default: it signs the proxies'
	// serving certificates, for anyone allowed to create a Certificate.
	DefaultIssuer = ReleaseFullname + "-ca"
	// ScrapersIssuer is the chart's CA Issuer of scrapers' client certificates, in the release
	// namespace: only who may create Certificates there gets one.
	ScrapersIssuer = ReleaseFullname + "-scrapers"
)

// Injector is the chart installed into the control plane with its webhook
// running as a local process, configured by the chart's own Deployment args.
type Injector struct {
	// Objects is what the release installed, by "Kind/name".
	Objects map[string]*unstructured.Unstructured
	// Args are the webhook's command line as the chart renders it.
	Args []string
	proc *process
}

// InstallChart runs helm install with extra --set values, the webhook URL
// pointed at a local port, waits for cert-manager to issue the webhook's
// certificate, cainjector to fill the caBundle and the default CA ClusterIssuer
// to be ready, then starts injectorBin (rbac-proxy-injector) with the chart's
// arguments and that certificate, and waits until it admits Pods.
func (cp *ControlPlane) InstallChart(ctx context.Context, injectorBin string, sets ...string) (*Injector, error) {
	port, err := testkit.FreePort()
	if err != nil {
		return nil, err
	}
	args := []string{"install", ReleaseName, ChartDir, "--namespace", ReleaseNamespace, "--create-namespace",
		"--set", fmt.Sprintf("webhook.url=https://localhost:%d/mutate-pods", port),
		"--set", "webhook.certificate.extraDNSNames={localhost}"}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	if out, err := cp.Helm(ctx, args...); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, out)
	}
	manifest, err := cp.Helm(ctx, "get", "manifest", ReleaseName, "--namespace", ReleaseNamespace)
	if err != nil {
		return nil, err
	}
	objs, err := DecodeObjects(manifest)
	if err != nil {
		return nil, fmt.Errorf("decoding the release's manifest: %w", err)
	}
	inj := &Injector{Objects: objs}

	secret, err := cp.waitForWebhookCertificate(ctx)
	if err != nil {
		return nil, err
	}
	certDir := filepath.Join(cp.Dir, "injector-tls")
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return nil, err
	}
	for _, k := range []string{"tls.crt", "tls.key"} {
		if err := os.WriteFile(filepath.Join(certDir, k), secret.Data[k], 0o600); err != nil {
			return nil, fmt.Errorf("writing the webhook's %s: %w", k, err)
		}
	}

	dep := objs["Deployment/"+ReleaseFullname]
	if dep == nil {
		return nil, errors.New("the release has no webhook Deployment")
	}
	containers, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	if len(containers) == 0 {
		return nil, errors.New("the webhook Deployment has no container")
	}
	rendered, _, _ := unstructured.NestedStringSlice(containers[0].(map[string]any), "args")
	for _, a := range rendered {
		// The local process listens where the webhook URL points, and serves
		// neither metrics nor probes, which would clash with other processes.
		if strings.HasPrefix(a, "--cert-dir=") || strings.HasPrefix(a, "--webhook-port=") ||
			strings.HasPrefix(a, "--metrics-bind-address=") || strings.HasPrefix(a, "--health-probe-bind-address=") {
			continue
		}
		inj.Args = append(inj.Args, a)
	}
	// The webhook runs as the chart's ServiceAccount, so the chart's RBAC is
	// what it gets: a missing rule fails here as it would in a cluster.
	kubeconfig, err := cp.ServiceAccountKubeconfig(ctx, ReleaseNamespace, ReleaseFullname)
	if err != nil {
		return nil, err
	}
	inj.Args = append(inj.Args, "--cert-dir="+certDir, "--webhook-host=127.0.0.1", "--webhook-port="+strconv.Itoa(port),
		"--metrics-bind-address=0", "--health-probe-bind-address=0", "--kubeconfig="+kubeconfig)
	inj.proc, err = startProcess(cp.Dir, "rbac-proxy-injector", injectorBin, inj.Args...)
	if err != nil {
		return nil, err
	}
	cp.components = append(cp.components, inj.proc)
	if err := cp.waitForWebhook(ctx, port, inj.proc); err != nil {
		return nil, err
	}
	return inj, nil
}

// waitForWebhookCertificate waits for the webhook's Secret, the caBundle and the CA ClusterIssuer.
func (cp *ControlPlane) waitForWebhookCertificate(ctx context.Context) (*corev1.Secret, error) {
	secret := &corev1.Secret{}
	err := Eventually(ctx, 90*time.Second, "cert-manager to issue the webhook's serving certificate", func(ctx context.Context) (bool, error) {
		err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ReleaseNamespace, Name: ReleaseFullname + "-serving-cert"}, secret)
		return err == nil && len(secret.Data["tls.crt"]) > 0, err
	})
	if err != nil {
		return nil, err
	}
	err = Eventually(ctx, 60*time.Second, "cainjector to fill the webhook configuration's caBundle", func(ctx context.Context) (bool, error) {
		mwc, err := cp.Clientset.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, ReleaseFullname, metav1.GetOptions{})
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
		return nil, err
	}
	err = Eventually(ctx, 60*time.Second, "the chart's CA ClusterIssuer to be Ready", func(ctx context.Context) (bool, error) {
		ci := &cmv1.ClusterIssuer{}
		if err := cp.Client.Get(ctx, client.ObjectKey{Name: DefaultIssuer}, ci); err != nil {
			return false, err
		}
		for _, c := range ci.Status.Conditions {
			if c.Type == cmv1.IssuerConditionReady && c.Status == cmmeta.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	return secret, err
}

// waitForWebhook waits until the webhook accepts TLS connections on port.
func (cp *ControlPlane) waitForWebhook(ctx context.Context, port int, p *process) error {
	return Eventually(ctx, 60*time.Second, "the local webhook to listen", func(ctx context.Context) (bool, error) {
		if done, err := p.exited(); done {
			return false, fmt.Errorf("rbac-proxy-injector exited: %v\n%s", err, p.tail(2000))
		}
		conn, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			return false, err
		}
		return true, conn.Close()
	})
}

// Stop stops the local webhook (it is also stopped with the control plane).
func (inj *Injector) Stop() error { return inj.proc.stop(10 * time.Second) }

// Log returns the tail of the webhook's log.
func (inj *Injector) Log() string { return inj.proc.tail(8000) }

// DecodeObjects decodes multi-document YAML into objects by "Kind/name".
func DecodeObjects(manifests string) (map[string]*unstructured.Unstructured, error) {
	objs := map[string]*unstructured.Unstructured{}
	r := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifests), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := r.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, err
		}
		if len(u.Object) > 0 {
			objs[u.GetKind()+"/"+u.GetName()] = u
		}
	}
}
