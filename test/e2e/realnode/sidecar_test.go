package realnode

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/rbac-proxy/rbac-proxy/test/framework"
	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// Names and numbers of the injected Pod the kubelet's view is checked against.
const (
	redirectContainer = "rbac-proxy-redirect"
	// proxyUID is the user the webhook runs the proxy as, the image's own (non-root).
	proxyUID      = 65532
	endpointsPort = 8444
)

// testSidecar: each exporter's Pod runs the proxy from the project's image as an init
// container with restartPolicy Always, started and Ready, as UID 65532 on the node; in redirect
// mode the nftables init container ran first and exited 0.
func testSidecar(t *testing.T, e *env) {
	for _, w := range workloads {
		t.Run(w.name, func(t *testing.T) {
			pod := e.pods[w.name]
			proxy := inject.ProxyContainer(pod)
			if proxy == nil || container(pod, inject.ContainerName) == nil {
				t.Fatalf("Pod %s was not injected: init containers %v", pod.Name, names(pod.Spec.InitContainers))
			}
			if proxy.RestartPolicy == nil || *proxy.RestartPolicy != corev1.ContainerRestartPolicyAlways || !isInit(pod, inject.ContainerName) {
				t.Errorf("the proxy is not a native sidecar: init %t, restartPolicy %v", isInit(pod, inject.ContainerName), proxy.RestartPolicy)
			}
			if proxy.Image != images.proxy {
				t.Errorf("the proxy runs image %s, want %s", proxy.Image, images.proxy)
			}
			st := containerStatus(pod, inject.ContainerName)
			if st == nil || st.Started == nil || !*st.Started || !st.Ready || st.State.Running == nil {
				t.Fatalf("the sidecar is not running and Ready: %s", framework.DescribePods([]corev1.Pod{*pod}))
			}
			app := containerStatus(pod, exporterContainer)
			if app == nil || !app.Ready || app.State.Running == nil {
				t.Fatalf("the app is not running and Ready: %s", framework.DescribePods([]corev1.Pod{*pod}))
			}
			if app.State.Running.StartedAt.Before(&st.State.Running.StartedAt) {
				t.Errorf("the app started at %s, before its sidecar (%s)", app.State.Running.StartedAt, st.State.Running.StartedAt)
			}
			uids, err := processUIDs(st.ContainerID)
			if err != nil {
				t.Fatal(err)
			}
			for _, uid := range uids {
				if uid != proxyUID {
					t.Errorf("a process of the proxy runs as UID %d, want %d", uid, proxyUID)
				}
			}
			if w.mode != inject.PortModeRedirect {
				return
			}
			if pod.Spec.InitContainers[0].Name != redirectContainer {
				t.Errorf("the first init container is %s, want %s", pod.Spec.InitContainers[0].Name, redirectContainer)
			}
			r := containerStatus(pod, redirectContainer)
			if r == nil || r.State.Terminated == nil || r.State.Terminated.ExitCode != 0 {
				t.Errorf("the redirect init container did not exit 0: %s", framework.DescribePods([]corev1.Pod{*pod}))
			}
		})
	}
}

func names(cs []corev1.Container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

func isInit(p *corev1.Pod, name string) bool {
	for _, c := range p.Spec.InitContainers {
		if c.Name == name {
			return true
		}
	}
	return false
}

// testProbes: the app's probes of the protected port were pointed at the proxy's endpoints
// port over HTTPS, /probe/<upstream port>/health, and the kubelet found the app Ready through
// them; the same URL answers the host with the app's own /health.
func testProbes(t *testing.T, e *env) {
	for _, w := range workloads {
		t.Run(w.name, func(t *testing.T) {
			pod := e.pods[w.name]
			upstream := exporterPort
			if w.mode == inject.PortModeTakeover {
				upstream = takeoverPort
			}
			want := fmt.Sprintf("/probe/%d/health", upstream)
			app := container(pod, exporterContainer)
			for what, p := range map[string]*corev1.Probe{"readiness": app.ReadinessProbe, "liveness": app.LivenessProbe} {
				if p == nil || p.HTTPGet == nil {
					t.Fatalf("the app's %s probe is gone: %+v", what, p)
				}
				h := p.HTTPGet
				if h.Scheme != corev1.URISchemeHTTPS || h.Port.IntValue() != endpointsPort || h.Path != want {
					t.Errorf("the %s probe is %s :%s%s, want HTTPS :%d%s", what, h.Scheme, h.Port.String(), h.Path, endpointsPort, want)
				}
			}
			if st := containerStatus(pod, exporterContainer); st == nil || !st.Ready || st.RestartCount != 0 {
				t.Errorf("the kubelet's probes did not pass: %s", framework.DescribePods([]corev1.Pod{*pod}))
			}
			c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: e.tlsConfig()}}
			res, body, err := fetch(t.Context(), c, "https://"+net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(endpointsPort))+want)
			if err != nil {
				t.Fatalf("the probe's URL from the host: %v", err)
			}
			if res.StatusCode != http.StatusOK {
				t.Errorf("the probe's URL from the host: %d %q, want 200", res.StatusCode, body)
			}
		})
	}
}
