package framework

import (
	"context"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
