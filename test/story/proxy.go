package story

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/rbac-proxy/rbac-proxy/internal/testkit"
	"github.com/rbac-proxy/rbac-proxy/internal/testpki"
	"github.com/rbac-proxy/rbac-proxy/test/framework"
	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// Proxy is rbac-proxy running as a local process with the arguments the
// webhook injected into an exporter's Pod.
type Proxy struct {
	// Deployment is the exporter's Deployment (and Service) name.
	Deployment string
	Namespace  string
	Pod        *corev1.Pod
	// InjectedArgs are the rbac-proxy container's args in the Pod; Args are
	// the ones it runs with (ports, upstream and paths made local).
	InjectedArgs, Args []string
	// URL is the proxy's https://127.0.0.1:PORT; ServerName the Service's
	// DNS name, which its serving certificate carries.
	URL, ServerName string
	// TLSSecret is the Secret (and Certificate) cert-manager issued for the
	// workload; TLS is its projection on disk, which the proxy reads.
	TLSSecret string
	TLS       *testkit.Projection

	tlsItems []corev1.KeyToPath
	proc     *framework.Proxy
	// caPEM is the issuer's CA from the Secret, for a proxy that runs in a
	// real Pod (TLS and proc are nil there: the kubelet mounts the Secret).
	caPEM []byte
}

// runProxies is step 4: for each exporter, run the proxy with the Pod's own
// arguments, in front of a local sample exporter, with the Secret cert-manager
// issued projected as kubelet would and the exporter's ServiceAccount as its
// identity, and wait until it is ready.
func runProxies(ctx context.Context, s *teller, env *Env, w *workloads) error {
	for _, e := range []*exporter{w.sar, w.static} {
		s.progress("running rbac-proxy as injected into %s (waiting for cert-manager's Secret)", e.pod.Name)
		p, err := startProxy(ctx, env, e)
		if err != nil {
			return err
		}
		if e == w.sar {
			env.SAR = p
		} else {
			env.Static = p
		}
		s.printf("        %s: rbac-proxy %s\n", e.name, strings.Join(p.Args, " "))
	}
	return nil
}

func startProxy(ctx context.Context, env *Env, e *exporter) (*Proxy, error) {
	c := inject.ProxyContainer(e.pod)
	if c == nil {
		return nil, fmt.Errorf("the Pod %s has no %s container: it was not injected", e.pod.Name, "rbac-proxy")
	}
	p := &Proxy{Deployment: e.name, Namespace: e.pod.Namespace, Pod: e.pod, InjectedArgs: c.Args,
		ServerName: e.name + "." + e.pod.Namespace + ".svc"}
	dir := filepath.Join(env.Dir, e.name)

	// Volumes: every Secret the proxy mounts is projected under dir, and the
	// mount path is rewritten to it in the arguments.
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		var vol *corev1.Volume
		for i := range e.pod.Spec.Volumes {
			if e.pod.Spec.Volumes[i].Name == m.Name {
				vol = &e.pod.Spec.Volumes[i]
			}
		}
		if vol != nil && vol.ConfigMap != nil {
			// The scrapers' CA, which the injector's certificate controller publishes.
			cm, err := WaitForConfigMap(ctx, env.CP, p.Namespace, vol.ConfigMap.Name)
			if err != nil {
				return nil, err
			}
			files := map[string][]byte{}
			for _, it := range vol.ConfigMap.Items {
				files[it.Path] = []byte(cm.Data[it.Key])
			}
			proj, err := testkit.NewProjection(filepath.Join(dir, m.Name), files)
			if err != nil {
				return nil, err
			}
			mounts[m.MountPath] = proj.Dir
			continue
		}
		if vol == nil || vol.Secret == nil {
			continue // the ServiceAccount token: replaced by --kubeconfig below
		}
		secret, err := WaitForSecret(ctx, env.CP, p.Namespace, vol.Secret.SecretName)
		if err != nil {
			return nil, err
		}
		proj, err := testkit.NewProjection(filepath.Join(dir, m.Name), SecretFiles(secret, vol.Secret.Items))
		if err != nil {
			return nil, err
		}
		mounts[m.MountPath] = proj.Dir
		if m.Name == "rbac-proxy-tls" {
			p.TLSSecret, p.TLS, p.tlsItems = secret.Name, proj, vol.Secret.Items
		}
	}
	if p.TLS == nil {
		return nil, fmt.Errorf("the proxy of %s mounts no volume rbac-proxy-tls", e.name)
	}

	upstream, err := startSampleExporter(env)
	if err != nil {
		return nil, err
	}
	var args []string
	for _, a := range c.Args {
		name, value, _ := strings.Cut(a, "=")
		switch name {
		case "--secure-listen-address", "--proxy-endpoints-port":
			continue // local ports, chosen by framework.StartProxy
		case "--upstream":
			value = upstream
		case "--kubeconfig":
			continue
		default:
			for from, to := range mounts {
				value = strings.ReplaceAll(value, from, to)
			}
		}
		args = append(args, name+"="+value)
	}

	// In the Pod the proxy is the exporter's ServiceAccount (in-cluster
	// configuration); here a kubeconfig with that ServiceAccount's token.
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(ctx, env.CP, p.Namespace, e.pod.Spec.ServiceAccountName, kubeconfig); err != nil {
		return nil, err
	}
	args = append(args, "--kubeconfig="+kubeconfig)

	// It dies with this process and is stopped by env.Stop.
	if p.proc, err = framework.StartProxy(ctx, env.proxyBin, framework.ProxyOptions{Args: args, Endpoints: true, Dir: dir}); err != nil {
		return nil, fmt.Errorf("starting rbac-proxy for %s: %w", p.Deployment, err)
	}
	env.onStop(p.proc.Stop)
	p.URL, p.Args = p.proc.URL, p.proc.Args
	return p, p.waitReady(ctx)
}

// WaitForSecret waits for cert-manager to fill the Secret.
func WaitForSecret(ctx context.Context, cp *framework.ControlPlane, ns, name string) (*corev1.Secret, error) {
	var secret *corev1.Secret
	err := framework.Eventually(ctx, 90*time.Second, "cert-manager to issue Secret "+ns+"/"+name, func(ctx context.Context) (bool, error) {
		var err error
		secret, err = cp.Clientset.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		return err == nil && len(secret.Data[corev1.TLSCertKey]) > 0 && len(secret.Data[corev1.TLSPrivateKeyKey]) > 0, err
	})
	return secret, err
}

// WaitForConfigMap waits for a ConfigMap to exist.
func WaitForConfigMap(ctx context.Context, cp *framework.ControlPlane, ns, name string) (*corev1.ConfigMap, error) {
	var cm *corev1.ConfigMap
	err := framework.Eventually(ctx, 60*time.Second, "ConfigMap "+ns+"/"+name, func(ctx context.Context) (bool, error) {
		var err error
		cm, err = cp.Clientset.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
	return cm, err
}

// SecretFiles returns the files a Secret volume holds: every key, or the listed items.
func SecretFiles(secret *corev1.Secret, items []corev1.KeyToPath) map[string][]byte {
	files := map[string][]byte{}
	if len(items) == 0 {
		for k, v := range secret.Data {
			files[k] = v
		}
		return files
	}
	for _, it := range items {
		files[it.Path] = secret.Data[it.Key]
	}
	return files
}

// writeKubeconfig writes a kubeconfig for ServiceAccount ns/sa with a fresh token.
func writeKubeconfig(ctx context.Context, cp *framework.ControlPlane, ns, sa, path string) error {
	if sa == "" {
		sa = "default"
	}
	token, err := cp.ServiceAccountToken(ctx, ns, sa, nil)
	if err != nil {
		return err
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["story"] = &clientcmdapi.Cluster{Server: cp.Config.Host, CertificateAuthority: cp.CAFile}
	cfg.AuthInfos[sa] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["story"] = &clientcmdapi.Context{Cluster: "story", AuthInfo: sa, Namespace: ns}
	cfg.CurrentContext = "story"
	return clientcmd.WriteToFile(*cfg, path)
}

// UpdateTLS projects a new version of the TLS Secret, as kubelet does when
// the Secret changes: one atomic ..data swap.
func (p *Proxy) UpdateTLS(secret *corev1.Secret) error {
	return p.TLS.Update(SecretFiles(secret, p.tlsItems))
}

// Running reports whether the proxy process is still the one the story
// started; a proxy in a real Pod is the kubelet's to run.
func (p *Proxy) Running() bool { return p.proc != nil && p.proc.Running() }

// Log returns the proxy's output when it runs as a local process.
func (p *Proxy) Log() string {
	if p.proc == nil {
		return ""
	}
	return p.proc.Log()
}

// waitReady waits for /readyz on the endpoints port, verified against the issuer's CA.
func (p *Proxy) waitReady(ctx context.Context) error {
	url := "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(p.proc.EndpointsPort)) + "/readyz"
	return framework.Eventually(ctx, 30*time.Second, "rbac-proxy of "+p.Deployment+" to be ready", func(ctx context.Context) (bool, error) {
		if !p.Running() {
			return false, fmt.Errorf("rbac-proxy exited:\n%s", p.Log())
		}
		res, err := p.do(ctx, url, "", nil)
		if err != nil {
			return false, err
		}
		if res.status != 200 {
			return false, errors.New("/readyz answered " + strconv.Itoa(res.status))
		}
		return true, nil
	})
}

// CAs returns the pool of the issuer's CA: from the projected Secret, or
// from the Secret itself for a proxy in a real Pod.
func (p *Proxy) CAs() (*x509.CertPool, error) {
	ca := p.caPEM
	if p.TLS != nil {
		var err error
		if ca, err = os.ReadFile(filepath.Join(p.TLS.Dir, "ca.crt")); err != nil {
			return nil, err
		}
	}
	pool, err := testpki.PoolFromPEM(ca)
	if err != nil {
		return nil, fmt.Errorf("ca.crt of %s: %w", p.TLSSecret, err)
	}
	return pool, nil
}
