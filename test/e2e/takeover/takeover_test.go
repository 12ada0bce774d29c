// Package takeover runs a dcgm-exporter-shaped Deployment through the webhook installed by the
// chart, in takeover mode (the dcgm-exporter preset detected from the image), then runs rbac-proxy
// on this machine with the arguments it was injected with, in front of a local app on the internal
// port the preset moved the app to, and checks what a client and the kubelet see. With
// port-mode rename, the API server relays the webhook's warning naming a Service that targets
// the protected port by number.
package takeover

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/rbac-proxy/rbac-proxy/internal/testkit"
	"github.com/rbac-proxy/rbac-proxy/internal/testpki"
	"github.com/rbac-proxy/rbac-proxy/test/framework"
	"github.com/rbac-proxy/rbac-proxy/test/story"
	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

var cp *framework.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(framework.Main(m, framework.Options{ControllerManager: true, CertManager: true}, &cp))
}

const (
	name         = "dcgm-exporter"
	image        = "nvcr.io/nvidia/k8s/dcgm-exporter:3.3.8-3.6.0-ubuntu22.04"
	port         = 9400
	internalPort = 19400 // where the dcgm-exporter preset moves the app
	healthBody   = "dcgm-exporter is healthy"
	metricsBody  = "DCGM_FI_DEV_GPU_UTIL{gpu=\"0\"} 87\n"
)

// app is the exporter: /health and /metrics, recording every request it sees.
type app struct {
	mu   sync.Mutex
	seen []string
}

func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.seen = append(a.seen, r.Method+" "+r.URL.RequestURI())
	a.mu.Unlock()
	switch r.URL.Path {
	case "/health":
		_, _ = io.WriteString(w, healthBody)
	case "/metrics":
		_, _ = io.WriteString(w, metricsBody)
	default:
		http.NotFound(w, r)
	}
}

func (a *app) requests() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.seen...)
}

func (a *app) reset() {
	a.mu.Lock()
	a.seen = nil
	a.mu.Unlock()
}

func deployment(ns string) *appsv1.Deployment {
	labels := map[string]string{"app.kubernetes.io/name": name}
	probe := func() *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: "/health", Port: intstr.FromInt32(port)}}, InitialDelaySeconds: 45, PeriodSeconds: 5}
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					ServiceAccountName: name,
					Containers: []corev1.Container{{
						Name:           name,
						Image:          image,
						Env:            []corev1.EnvVar{{Name: "DCGM_EXPORTER_LISTEN", Value: ":9400"}, {Name: "DCGM_EXPORTER_KUBERNETES", Value: "true"}},
						Ports:          []corev1.ContainerPort{{Name: "metrics", ContainerPort: port, Protocol: corev1.ProtocolTCP}},
						LivenessProbe:  probe(),
						ReadinessProbe: probe(),
					}},
				},
			},
		},
	}
}

// TestPortModes installs the chart once and runs the modes that need the API server.
func TestPortModes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	proxyBin, err := framework.Build(ctx, "./cmd/proxy")
	if err != nil {
		t.Fatal(err)
	}
	injectorBin, err := framework.Build(ctx, "./cmd/webhook")
	if err != nil {
		t.Fatal(err)
	}
	inj, err := cp.InstallChart(ctx, injectorBin)
	if err != nil {
		t.Fatalf("installing the chart: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("injector log:\n%s", inj.Log())
		}
		_ = inj.Stop()
	})

	ns, err := cp.CreateNamespace(ctx, "takeover", map[string]string{inject.LabelInject: "enabled"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cp.Clientset.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cp.Clientset.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: ns + "-auth-delegator"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:auth-delegator"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: name}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Run("takeover", func(t *testing.T) { testTakeover(ctx, t, ns, proxyBin) })
	t.Run("rename-warns-about-service", func(t *testing.T) { testRenameWarning(ctx, t, ns) })
}

// testRenameWarning: with port-mode rename, a Service that selects the Pod and targets the
// protected port by number bypasses the proxy, and the API server relays the webhook's warning
// naming it.
func testRenameWarning(ctx context.Context, t *testing.T, ns string) {
	const renamed = "dcgm-exporter-rename"
	dep := deployment(ns)
	dep.Name = renamed
	labels := map[string]string{"app.kubernetes.io/name": renamed}
	dep.Labels, dep.Spec.Selector.MatchLabels, dep.Spec.Template.Labels = labels, labels, labels
	dep.Spec.Template.Annotations = map[string]string{inject.AnnotationPortMode: string(inject.PortModeRename)}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gpu-metrics-by-number"},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: port, TargetPort: intstr.FromInt32(port)}}},
	}
	if _, err := cp.Clientset.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cp.Clientset.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod, err := story.WaitForPod(ctx, cp, ns, renamed)
	if err != nil {
		t.Fatal(err)
	}
	var warnings []string
	// The webhook reads Services from its cache: wait for it to see the new one.
	err = framework.Eventually(ctx, 30*time.Second, "the warning naming Service "+svc.Name, func(ctx context.Context) (bool, error) {
		var err error
		warnings, err = story.AdmissionWarnings(ctx, cp, pod, renamed)
		for _, w := range warnings {
			if strings.Contains(w, "Service "+svc.Name+" targets port 9400 by number") {
				return true, err
			}
		}
		return false, err
	})
	if err != nil {
		t.Fatalf("%v; warnings: %q", err, warnings)
	}
	t.Logf("warnings: %q", warnings)
}

func testTakeover(ctx context.Context, t *testing.T, ns, proxyBin string) {
	if _, err := cp.Clientset.AppsV1().Deployments(ns).Create(ctx, deployment(ns), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod, err := story.WaitForPod(ctx, cp, ns, name)
	if err != nil {
		t.Fatal(err)
	}

	// The app container now binds 127.0.0.1:<internal port>, and nothing else of it changed.
	var appC *corev1.Container
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			appC = &pod.Spec.Containers[i]
		}
	}
	if appC == nil {
		t.Fatalf("the Pod lost its container %s", name)
	}
	listen := ""
	for _, e := range appC.Env {
		if e.Name == "DCGM_EXPORTER_LISTEN" {
			listen = e.Value
		}
	}
	if want := "127.0.0.1:" + strconv.Itoa(internalPort); listen != want {
		t.Fatalf("DCGM_EXPORTER_LISTEN = %q, want %q (env %v, args %v)", listen, want, appC.Env, appC.Args)
	}
	proxyC := inject.ProxyContainer(pod)
	if proxyC == nil {
		t.Fatalf("the Pod was not injected: %+v", pod.Spec)
	}
	if len(proxyC.Ports) != 1 || proxyC.Ports[0].ContainerPort != port || proxyC.Ports[0].Name != "metrics" {
		t.Errorf("the proxy does not own port %d named metrics: %+v", port, proxyC.Ports)
	}
	for _, cport := range appC.Ports {
		if cport.ContainerPort == port || cport.Name == "metrics" {
			t.Errorf("the app still declares %+v", cport)
		}
	}

	// The kubelet's probe, as rewritten in the Pod spec.
	probe := appC.ReadinessProbe
	if probe == nil || probe.HTTPGet == nil {
		t.Fatalf("the app lost its readiness probe: %+v", appC.ReadinessProbe)
	}
	t.Logf("injected: rbac-proxy %s; app probe %s %s:%s", strings.Join(proxyC.Args, " "), probe.HTTPGet.Scheme, probe.HTTPGet.Port.String(), probe.HTTPGet.Path)

	// Run the proxy as injected: ports made free local ones (the internal port included, in the
	// upstream, the probe pass-through and the probe's path; the proxy's own two chosen by
	// framework.StartProxy), mounts made local directories.
	local := map[int]int{}
	free := func(p int) int {
		if l, ok := local[p]; ok {
			return l
		}
		l, err := testkit.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		local[p] = l
		return l
	}
	endpointsPort := 0
	dir := t.TempDir()
	var args []string
	tlsDir := ""
	for _, a := range proxyC.Args {
		flag, value, _ := strings.Cut(a, "=")
		switch flag {
		case "--secure-listen-address":
			host, p, _ := net.SplitHostPort(value)
			n, _ := strconv.Atoi(p)
			if host != "0.0.0.0" || n != port {
				t.Errorf("the proxy listens on %s, want 0.0.0.0:%d", value, port)
			}
			continue
		case "--proxy-endpoints-port":
			endpointsPort, _ = strconv.Atoi(value)
			continue
		case "--upstream":
			want := fmt.Sprintf("http://127.0.0.1:%d/", internalPort)
			if value != want {
				t.Errorf("--upstream=%s, want %s", value, want)
			}
			value = fmt.Sprintf("http://127.0.0.1:%d/", free(internalPort))
		case "--probe-passthrough":
			parts := strings.SplitN(value, ":", 3)
			n, _ := strconv.Atoi(parts[1])
			parts[1] = strconv.Itoa(free(n))
			value = strings.Join(parts, ":")
		case "--kubeconfig":
			continue
		}
		for _, m := range proxyC.VolumeMounts {
			if m.Name == "rbac-proxy-tls" && strings.HasPrefix(value, m.MountPath) {
				tlsDir = filepath.Join(dir, m.Name)
				value = tlsDir + strings.TrimPrefix(value, m.MountPath)
			}
		}
		args = append(args, flag+"="+value)
	}
	if tlsDir == "" {
		t.Fatalf("the proxy reads no file of the volume rbac-proxy-tls: %v", proxyC.Args)
	}
	var secretName string
	for _, v := range pod.Spec.Volumes {
		if v.Name == "rbac-proxy-tls" && v.Secret != nil {
			secretName = v.Secret.SecretName
		}
	}
	secret, err := story.WaitForSecret(ctx, cp, ns, secretName)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := testkit.NewProjection(tlsDir, story.SecretFiles(secret, nil)); err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := cp.ServiceAccountKubeconfig(ctx, ns, name)
	if err != nil {
		t.Fatal(err)
	}
	args = append(args, "--kubeconfig="+kubeconfig)

	// The app, on 127.0.0.1:<internal port> (made local).
	exporter := &app{}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(free(internalPort))))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: exporter}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })

	proxy, err := framework.StartProxy(ctx, proxyBin, framework.ProxyOptions{Args: args, Endpoints: true, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("running: rbac-proxy %s", strings.Join(proxy.Args, " "))
	t.Cleanup(func() {
		_ = proxy.Stop()
		if t.Failed() {
			t.Logf("rbac-proxy log:\n%s", proxy.Log())
		}
	})
	local[port], local[endpointsPort] = proxy.Port, proxy.EndpointsPort

	pool, err := testpki.PoolFromPEM(secret.Data["ca.crt"])
	if err != nil {
		t.Fatalf("ca.crt of the Secret: %v", err)
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: name + "." + ns + ".svc"}}}
	get := func(port int, path string) (int, string, error) {
		res, err := client.Get("https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) + path)
		if err != nil {
			return 0, "", err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		return res.StatusCode, string(b), err
	}
	if err := framework.Eventually(ctx, 30*time.Second, "rbac-proxy to be ready", func(context.Context) (bool, error) {
		code, _, err := get(local[endpointsPort], "/readyz")
		return code == 200, err
	}); err != nil {
		t.Fatal(err)
	}
	exporter.reset()

	// No credentials on the protected port: 401, and the app saw nothing.
	code, body, err := get(local[port], "/metrics")
	if err != nil || code != http.StatusUnauthorized {
		t.Errorf("GET :%d/metrics without credentials = %d %q (%v), want 401", port, code, body, err)
	}
	if seen := exporter.requests(); len(seen) != 0 {
		t.Errorf("the app saw %v from an unauthenticated client", seen)
	}

	// The kubelet's probe, from the Pod spec, through the endpoints port: the app's answer.
	if probe.HTTPGet.Scheme != corev1.URISchemeHTTPS || probe.HTTPGet.Port.IntValue() != endpointsPort {
		t.Errorf("the probe goes to %s port %s, want HTTPS on the endpoints port %d", probe.HTTPGet.Scheme, probe.HTTPGet.Port.String(), endpointsPort)
	}
	probePath := strings.Replace(probe.HTTPGet.Path, "/"+strconv.Itoa(internalPort)+"/", "/"+strconv.Itoa(local[internalPort])+"/", 1)
	code, body, err = get(local[endpointsPort], probePath)
	if err != nil || code != http.StatusOK || body != healthBody {
		t.Errorf("probe %s = %d %q (%v), want 200 %q", probe.HTTPGet.Path, code, body, err, healthBody)
	}
	if seen := exporter.requests(); len(seen) != 1 || seen[0] != "GET /health" {
		t.Errorf("the app saw %v for the probe, want [GET /health]", seen)
	}

	// Any other path through the pass-through: 404, and the app sees nothing.
	exporter.reset()
	for _, p := range []string{
		strings.TrimSuffix(probePath, "/health") + "/metrics",
		strings.TrimSuffix(probePath, "/health") + "/health/../metrics",
		"/probe/" + strconv.Itoa(local[internalPort]) + "/",
	} {
		code, body, err = get(local[endpointsPort], p)
		if err != nil || code != http.StatusNotFound {
			t.Errorf("GET %s on the endpoints port = %d %q (%v), want 404", p, code, body, err)
		}
	}
	if seen := exporter.requests(); len(seen) != 0 {
		t.Errorf("the app saw %v through the probe pass-through", seen)
	}
}
