package story

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rbac-proxy/rbac-proxy/test/framework"
	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// waitForPods is step 4 on a real node: the kubelet runs each exporter's Pod
// as the webhook injected it — the proxy as a native sidecar with the Secret
// cert-manager issued mounted, the probes through its pass-through — and the
// story waits until the Pod is Ready, shows what the kubelet reports of it,
// and scrapes the proxy at the Pod's IP. The checks say what the kubelet runs.
func waitForPods(ctx context.Context, s *teller, env *Env, w *workloads) ([]Check, error) {
	var checks []Check
	for _, e := range []*exporter{w.sar, w.static} {
		s.progress("waiting for the kubelet to run %s's Pod to Ready (the proxy as a native sidecar)", e.name)
		pod, err := waitForReadyPod(ctx, env.CP, env.Namespace, e.name)
		if err != nil {
			return nil, err
		}
		p, err := podProxy(ctx, env, e.name, pod)
		if err != nil {
			return nil, err
		}
		if e == w.sar {
			env.SAR = p
		} else {
			env.Static = p
		}
		seen, err := printKubeletView(ctx, s, env.CP, pod)
		if err != nil {
			return nil, err
		}
		checks = append(checks, sidecarCheck(e.name, seen), bypassCheck(ctx, e.name, pod, p))
		s.printf("        %s: rbac-proxy answers at %s (serving certificate for %s)\n", e.name, p.URL, p.ServerName)
	}
	return checks, nil
}

// waitForReadyPod waits for a Ready Pod of Deployment name and returns it.
func waitForReadyPod(ctx context.Context, cp *framework.ControlPlane, ns, name string) (*corev1.Pod, error) {
	var ready *corev1.Pod
	err := framework.Eventually(ctx, 3*time.Minute, "a Ready Pod of Deployment "+name, func(ctx context.Context) (bool, error) {
		pods, err := cp.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=" + name})
		if err != nil {
			return false, err
		}
		for i := range pods.Items {
			if framework.PodReady(&pods.Items[i]) {
				ready = &pods.Items[i]
				return true, nil
			}
		}
		return false, nil
	})
	return ready, err
}

// podProxy is the injected proxy of a running Pod: its port named metrics at
// the Pod's IP, and the CA of the Secret its serving certificate comes from.
func podProxy(ctx context.Context, env *Env, name string, pod *corev1.Pod) (*Proxy, error) {
	c := inject.ProxyContainer(pod)
	if c == nil {
		return nil, fmt.Errorf("the Pod %s has no rbac-proxy container: it was not injected", pod.Name)
	}
	p := &Proxy{Deployment: name, Namespace: pod.Namespace, Pod: pod, InjectedArgs: c.Args, Args: c.Args,
		ServerName: name + "." + pod.Namespace + ".svc"}
	for _, port := range c.Ports {
		if port.Name == exporterPortName {
			p.URL = "https://" + net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(int(port.ContainerPort)))
		}
	}
	if p.URL == "" {
		return nil, fmt.Errorf("the rbac-proxy container of %s has no port %s", pod.Name, exporterPortName)
	}
	for _, v := range pod.Spec.Volumes {
		if v.Name == "rbac-proxy-tls" && v.Secret != nil {
			p.TLSSecret = v.Secret.SecretName
		}
	}
	if p.TLSSecret == "" {
		return nil, fmt.Errorf("the Pod %s mounts no Secret volume rbac-proxy-tls", pod.Name)
	}
	secret, err := WaitForSecret(ctx, env.CP, pod.Namespace, p.TLSSecret)
	if err != nil {
		return nil, err
	}
	p.caPEM = secret.Data["ca.crt"]
	return p, nil
}

// printKubeletView shows the Pod as the kubelet itself reports it (its /pods
// endpoint, through the API server's node proxy): where it runs, its IP, and
// each container's state as the kubelet started it.
func printKubeletView(ctx context.Context, s *teller, cp *framework.ControlPlane, pod *corev1.Pod) (*corev1.Pod, error) {
	raw, err := cp.Clientset.CoreV1().RESTClient().Get().
		AbsPath("/api/v1/nodes", pod.Spec.NodeName, "proxy", "pods").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("asking the kubelet of %s for its Pods: %w", pod.Spec.NodeName, err)
	}
	var list corev1.PodList
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("decoding the kubelet's Pods: %w", err)
	}
	var seen *corev1.Pod
	for i := range list.Items {
		if list.Items[i].UID == pod.UID {
			seen = &list.Items[i]
		}
	}
	if seen == nil {
		return nil, fmt.Errorf("the kubelet of %s does not run Pod %s", pod.Spec.NodeName, pod.Name)
	}
	ready := "—"
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			ready = c.LastTransitionTime.Sub(pod.CreationTimestamp.Time).Round(time.Second).String()
		}
	}
	s.printf("\n  the kubelet of node %s runs Pod %s: IP %s, Ready %s after it was created\n", pod.Spec.NodeName, pod.Name, pod.Status.PodIP, ready)
	statuses := append(append([]corev1.ContainerStatus(nil), seen.Status.InitContainerStatuses...), seen.Status.ContainerStatuses...)
	for _, st := range statuses {
		state := "waiting"
		switch {
		case st.State.Running != nil:
			state = "running since " + st.State.Running.StartedAt.Format(time.TimeOnly)
		case st.State.Terminated != nil:
			state = fmt.Sprintf("terminated (exit %d)", st.State.Terminated.ExitCode)
		}
		s.printf("    %-22s %-26s ready=%-5t restarts=%d image %s\n", st.Name, state, st.Ready, st.RestartCount, st.Image)
	}
	s.printf("\n")
	return seen, nil
}

// sidecarCheck: the kubelet runs the proxy as a started, ready native sidecar
// and the exporter beside it, neither restarted.
func sidecarCheck(name string, seen *corev1.Pod) Check {
	got := "no rbac-proxy sidecar in the kubelet's view"
	ok := false
	for _, st := range seen.Status.InitContainerStatuses {
		if st.Name != inject.ContainerName {
			continue
		}
		got = fmt.Sprintf("rbac-proxy running=%t ready=%t restarts=%d", st.State.Running != nil, st.Ready, st.RestartCount)
		ok = st.State.Running != nil && st.Ready && st.RestartCount == 0
	}
	for _, st := range seen.Status.ContainerStatuses {
		got += fmt.Sprintf(", %s running=%t ready=%t restarts=%d", st.Name, st.State.Running != nil, st.Ready, st.RestartCount)
		ok = ok && st.State.Running != nil && st.Ready && st.RestartCount == 0
	}
	return Check{Name: name + ": Pod on the real node", Expected: "rbac-proxy a running native sidecar, exporter running, both ready, no restarts", Got: got, OK: ok}
}

// bypassCheck: the exporter itself, moved by the webhook to the upstream
// address, cannot be reached from outside the Pod at its IP.
func bypassCheck(ctx context.Context, name string, pod *corev1.Pod, p *Proxy) Check {
	upstream := ""
	for _, a := range p.InjectedArgs {
		if v, ok := strings.CutPrefix(a, "--upstream="); ok {
			upstream = v
		}
	}
	c := Check{Name: name + ": the exporter at the Pod's IP, past the proxy", Expected: "connection refused"}
	u, err := url.Parse(upstream)
	if err != nil || u.Port() == "" {
		c.Got = fmt.Sprintf("no upstream port in the proxy's --upstream=%q", upstream)
		return c
	}
	addr := net.JoinHostPort(pod.Status.PodIP, u.Port())
	d := net.Dialer{Timeout: 3 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	switch {
	case err == nil:
		_ = conn.Close()
		c.Got = addr + " accepted the connection"
	case errors.Is(err, syscall.ECONNREFUSED):
		c.Got, c.OK = addr+" refused", true
	default:
		c.Got = addr + ": " + err.Error()
	}
	return c
}
