package framework

import (
	"context"
	"time"
)

// startScheduler runs kube-scheduler, so that Deployments' and DaemonSets'
// Pods get bound to the node. It serves nothing (--secure-port=0): what tells
// it works is a Pod that gets bound.
func (cp *ControlPlane) startScheduler(ctx context.Context, bin string) error {
	path, err := binary(bin, "kube-scheduler")
	if err != nil {
		return err
	}
	p, err := startProcess(cp.Dir, "kube-scheduler", path,
		"--kubeconfig="+cp.KubeconfigPath,
		"--leader-elect=false",
		"--secure-port=0",
	)
	if err != nil {
		return err
	}
	cp.components = append(cp.components, p)
	return p.survives(ctx, time.Second)
}
