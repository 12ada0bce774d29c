package story

import (
	"context"

	"github.com/rbac-proxy/rbac-proxy/test/framework"
)

// startControlPlane is step 1: etcd, kube-apiserver, kube-controller-manager
// (Deployments get Pods, owned objects are garbage-collected) and cert-manager.
func startControlPlane(ctx context.Context, s *teller, env *Env) error {
	s.progress("starting the control plane (etcd, kube-apiserver, kube-controller-manager, cert-manager)")
	cp, err := framework.Start(ctx, framework.Options{ControllerManager: true, CertManager: true})
	if err != nil {
		return err
	}
	env.CP, env.ownCP = cp, true
	env.onStop(cp.Stop)
	return nil
}
