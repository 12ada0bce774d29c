package check

import (
	"errors"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"

	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// runningPolicy is, for an injected Pod that stands for its own workload (a bare Pod, or one
// whose controller could not be read), the policy its proxy runs with: the webhook's policy is
// computed from the Pod before the render changed it, which is gone. Its TLS and client CA are
// read from the annotations, as the certificate controller reads a bare Pod's; what the proxy
// asks and serves, from the proxy's own arguments (inject.ProxyConfigOf, the proxy's parser).
func runningPolicy(pod *corev1.Pod, in inject.PolicyInput) (*inject.Policy, error) {
	c := inject.ProxyContainer(pod)
	if c == nil || len(c.Ports) == 0 {
		return nil, errors.New("the Pod's " + inject.ContainerName + " container has no port")
	}
	cfg, err := inject.ProxyConfigOf(c.Args)
	if err != nil {
		return nil, fmt.Errorf("the arguments of its %s container: %w", inject.ContainerName, err)
	}
	tls, err := inject.ParseTLS(pod.Annotations, in)
	if err != nil {
		return nil, err
	}
	a := cfg.Authorization
	p := &inject.Policy{
		Image: c.Image, ProxyPort: c.Ports[0].ContainerPort, TLS: tls,
		Authz: a.Mode, ResourceAttributes: a.ResourceAttributes, Tenancy: a.Tenancy.Mode,
		AllowPaths: cfg.Paths.Allow, IgnorePaths: cfg.Paths.Ignore,
		TokenAudiences: cfg.Authentication.Audiences, TokenVerification: cfg.Authentication.ServiceAccounts.Verification,
	}
	if v, ok := pod.Annotations[inject.AnnotationClientCA]; ok {
		p.ClientCA, _ = inject.ParseClientCA(v, in.Defaults)
	}
	if cfg.Upstream.URL != nil {
		port, _ := strconv.Atoi(cfg.Upstream.URL.Port())
		p.UpstreamPort = int32(port)
	}
	// The mode: as annotated; else takeover when no app container declares the port the app now
	// listens on (the render gave its port entry to the proxy), rename when one does.
	p.Mode = inject.PortMode(pod.Annotations[inject.AnnotationPortMode])
	if p.Mode == "" {
		p.Mode = inject.PortModeTakeover
		for _, ac := range pod.Spec.Containers {
			for _, port := range ac.Ports {
				if ac.Name != inject.ContainerName && port.ContainerPort == p.UpstreamPort {
					p.Mode = inject.PortModeRename
				}
			}
		}
	}
	p.Target = inject.PortTarget{Number: p.UpstreamPort, Name: c.Ports[0].Name, ProxyPortName: c.Ports[0].Name}
	if p.Mode == inject.PortModeTakeover {
		p.Target.Number = p.ProxyPort
	}
	return p, nil
}
