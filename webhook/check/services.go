package check

import (
	"fmt"

	"github.com/rbac-proxy/rbac-proxy/webhook"
	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// ruleServices: in rename mode, a Service that reaches the protected port by number reaches the
// app past the proxy (the webhook's admission warning, webhook.AppPortByNumber).
func ruleServices(a *analysis, x *assessed) {
	if !x.protected() || x.policy.Mode != inject.PortModeRename {
		return
	}
	p := x.policy
	for _, i := range a.index().servicesOf(x.ref.Namespace, x.subject.Labels) {
		svc := &a.snap.Services[i]
		port, ok := webhook.AppPortByNumber(svc, x.subject.Labels, p)
		if !ok {
			continue
		}
		to := p.Target.ProxyPortName
		if p.Target.Name == "" {
			to = fmt.Sprint(p.ProxyPort)
		}
		a.find(CodeServiceTargetsAppPort, ObjectRef{Kind: "Service", Namespace: svc.Namespace, Name: svc.Name}, x,
			fmt.Sprintf("Service %s port %d targets port %d of %s %s by number and reaches the app, bypassing the proxy (rename mode gave the port's name to the proxy)", svc.Name, svc.Spec.Ports[port].Port, p.Target.Number, x.ref.Kind, x.ref.Name),
			fmt.Sprintf("set spec.ports[%d].targetPort to %s", port, to))
	}
}
