package story

import (
	"context"
	"errors"
	"fmt"

	"github.com/rbac-proxy/rbac-proxy/internal/image"
	"github.com/rbac-proxy/rbac-proxy/test/framework"
)

// startControlPlane is step 1: etcd, kube-apiserver, kube-controller-manager
// (Deployments get Pods, owned objects are garbage-collected) and cert-manager;
// with node, a real node too (kube-scheduler, containerd and a kubelet, the
// project's images imported). When this machine cannot run a node
// (framework.ErrNoNode) it says why and goes on without one: the proxies then
// run as local processes with the injected arguments.
func startControlPlane(ctx context.Context, s *teller, env *Env, node bool) error {
	opts := framework.Options{ControllerManager: true, CertManager: true}
	if node {
		s.progress("building the images (rbac-proxy, the sample dcgm-exporter, the sandbox) without Docker")
		built, err := framework.BuildImages(ctx)
		if err != nil {
			return err
		}
		if opts.Node, err = framework.NodeImages(built); err != nil {
			return err
		}
		for _, b := range built {
			if b.Name == image.SampleExporter {
				env.exporterImage = b.Ref
			}
		}
		s.progress("starting the control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, cert-manager) and a real node (containerd, kubelet)")
		cp, err := framework.Start(ctx, opts)
		if err == nil {
			env.CP, env.ownCP = cp, true
			env.onStop(cp.Stop)
			s.printf("        node %s Ready in %s at %s: Pods run for real\n", cp.Node.Name, cp.Node.StartTook().Round(100_000_000), cp.Node.IP)
			return nil
		}
		if !errors.Is(err, framework.ErrNoNode) {
			return err
		}
		env.exporterImage = ""
		opts.Node = nil
		s.printf("        %v\n        telling the story without a node: the proxies run as local processes with the arguments the webhook injected\n", err)
	}
	s.progress("starting the control plane (etcd, kube-apiserver, kube-controller-manager, cert-manager)")
	cp, err := framework.Start(ctx, opts)
	if err != nil {
		return fmt.Errorf("starting the control plane: %w", err)
	}
	env.CP, env.ownCP = cp, true
	env.onStop(cp.Stop)
	return nil
}
