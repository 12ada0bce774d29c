package framework

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
)

// CreateNamespace creates a namespace with a name generated from prefix and
// the given labels, and returns its name. With kube-controller-manager
// running it also waits for the namespace's default ServiceAccount, without
// which the ServiceAccount admission plugin refuses Pods.
func (cp *ControlPlane) CreateNamespace(ctx context.Context, prefix string, labels map[string]string) (string, error) {
	ns, err := cp.Clientset.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-", Labels: labels},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("creating a namespace %q: %w", prefix, err)
	}
	if cp.controllerManager {
		err := Eventually(ctx, 30*time.Second, "the default ServiceAccount of namespace "+ns.Name, func(ctx context.Context) (bool, error) {
			_, err := cp.Clientset.CoreV1().ServiceAccounts(ns.Name).Get(ctx, "default", metav1.GetOptions{})
			return err == nil, err
		})
		if err != nil {
			return "", err
		}
	}
	return ns.Name, nil
}

// TestNamespace is CreateNamespace for one test: it fails t on error and
// deletes the namespace when t ends.
func (cp *ControlPlane) TestNamespace(t testing.TB, prefix string) string {
	t.Helper()
	ns, err := cp.CreateNamespace(context.Background(), prefix, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cp.Clientset.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
	return ns
}

// TestToken is ServiceAccountToken for one test: it fails t on error.
func (cp *ControlPlane) TestToken(t testing.TB, ns, name string, audiences ...string) string {
	t.Helper()
	tok, err := cp.ServiceAccountToken(context.Background(), ns, name, audiences)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// ServiceAccountToken creates the ServiceAccount ns/name if it is missing and
// returns a fresh token for it (TokenRequest API), bound to audiences when
// given (else the API server's own audience).
func (cp *ControlPlane) ServiceAccountToken(ctx context.Context, ns, name string, audiences []string) (string, error) {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	_, err := cp.Clientset.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("creating ServiceAccount %s/%s: %w", ns, name, err)
	}
	tr, err := cp.Clientset.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: audiences, ExpirationSeconds: ptr.To[int64](3600)},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("requesting a token for ServiceAccount %s/%s: %w", ns, name, err)
	}
	return tr.Status.Token, nil
}

// Eventually polls cond every 200ms until it returns true or timeout passes;
// the error tells what was awaited and the last error cond returned.
func Eventually(ctx context.Context, timeout time.Duration, what string, cond func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := waitFor(ctx, 200*time.Millisecond, cond); err != nil {
		return fmt.Errorf("waiting %s for %s: %w", timeout, what, err)
	}
	return nil
}

// ServiceAccountKubeconfig writes a kubeconfig that authenticates as the
// ServiceAccount ns/name (created if missing) with a fresh token, the way a
// Pod running as it would reach the API server, and returns its path.
func (cp *ControlPlane) ServiceAccountKubeconfig(ctx context.Context, ns, name string) (string, error) {
	token, err := cp.ServiceAccountToken(ctx, ns, name, nil)
	if err != nil {
		return "", err
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["test"] = &clientcmdapi.Cluster{Server: cp.Config.Host, CertificateAuthorityData: cp.Config.CAData}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: name, Namespace: ns}
	cfg.CurrentContext = "test"
	path := filepath.Join(cp.Dir, fmt.Sprintf("sa-%s-%s.kubeconfig", ns, name))
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return "", fmt.Errorf("writing the kubeconfig of ServiceAccount %s/%s: %w", ns, name, err)
	}
	return path, nil
}
