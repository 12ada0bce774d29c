package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/utils/ptr"

	"github.com/rbac-proxy/rbac-proxy/test/framework"
)

const tokenAudience = "rbac-proxy-node-suite"

// A Pod with what the injector renders for a sidecar (a native sidecar with
// an httpGet readiness probe, a projected ServiceAccount token, a Secret
// volume) runs to Ready on the real node; the host reaches it at its IP, and
// from inside it reaches the API server through its in-cluster config.
func TestPod(t *testing.T) {
	ctx := context.Background()
	ns := cp.TestNamespace(t, "node")
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: ns},
		Data:       map[string][]byte{"value": []byte("first")},
	}
	if _, err := cp.Clientset.CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	pod, err := cp.Clientset.CoreV1().Pods(ns).Create(ctx, probePod(ns), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ready, err := cp.WaitPodsReady(ctx, ns, "app=probe", 1, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	pod = &ready[0]
	t.Logf("figure: Pod create → Ready (native sidecar, two readiness probes) %s", time.Since(begin).Round(100*time.Millisecond))
	if pod.Spec.NodeName != cp.Node.Name {
		t.Errorf("Pod bound to %q, want %q (by kube-scheduler)", pod.Spec.NodeName, cp.Node.Name)
	}
	ip := pod.Status.PodIP
	t.Logf("Pod IP %s", ip)

	t.Run("the host reaches the Pod's IP", func(t *testing.T) {
		body := get(t, fmt.Sprintf("http://%s:9400/metrics", ip))
		if !strings.Contains(body, "DCGM_FI_") {
			t.Errorf("the sidecar's /metrics holds no DCGM_FI_ family:\n%s", body)
		}
	})

	t.Run("in-cluster API from inside the Pod", func(t *testing.T) {
		var got struct{ Host, Username, Error string }
		if err := json.Unmarshal([]byte(get(t, fmt.Sprintf("http://%s:8080/inclusterapi", ip))), &got); err != nil {
			t.Fatal(err)
		}
		wantHost := fmt.Sprintf("https://%s:%d", framework.BridgeAddress, framework.APIServerPort)
		wantUser := "system:serviceaccount:" + ns + ":default"
		if got.Error != "" || got.Host != wantHost || got.Username != wantUser {
			t.Errorf("in-cluster API = %+v, want host %s and username %s", got, wantHost, wantUser)
		}
	})

	// The API server itself says what the projected token is: for the
	// audience, the Pod's ServiceAccount, bound to the Pod and the Node.
	t.Run("projected token for the audience, bound to the Pod and the Node", func(t *testing.T) {
		review, err := cp.Clientset.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
			Spec: authenticationv1.TokenReviewSpec{Token: get(t, fmt.Sprintf("http://%s:8080/token", ip)), Audiences: []string{tokenAudience}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		st := review.Status
		extra := func(k string) string {
			if v := st.User.Extra["authentication.kubernetes.io/"+k]; len(v) == 1 {
				return v[0]
			}
			return ""
		}
		if !st.Authenticated || st.User.Username != "system:serviceaccount:"+ns+":default" ||
			fmt.Sprint(st.Audiences) != "["+tokenAudience+"]" || extra("pod-name") != pod.Name || extra("node-name") != cp.Node.Name {
			t.Errorf("TokenReview of the projected token = %+v; want it authenticated for %s as the default ServiceAccount, bound to Pod %s on Node %s",
				st, tokenAudience, pod.Name, cp.Node.Name)
		}
	})

	// The API server reaches the kubelet (its client certificate, the
	// kubelet's serving certificate verified) for logs and exec.
	t.Run("logs through the API server", func(t *testing.T) {
		logs, err := cp.Clientset.CoreV1().Pods(ns).GetLogs(pod.Name, &corev1.PodLogOptions{Container: "probe"}).DoRaw(ctx)
		if err != nil || !strings.Contains(string(logs), "probe listening on :8080") {
			t.Errorf("logs = %q, %v; want the probe's start line", logs, err)
		}
	})
	t.Run("exec through the API server", func(t *testing.T) {
		out, err := execIn(ctx, ns, pod.Name, "probe", "/probe", "-cat", "/etc/probe-secret/value")
		if err != nil || out != "first" {
			t.Errorf("exec printed %q, %v; want the Secret's value", out, err)
		}
	})

	t.Run("the Secret volume follows the Secret", func(t *testing.T) {
		url := fmt.Sprintf("http://%s:8080/secret", ip)
		if got := get(t, url); got != "first" {
			t.Fatalf("secret volume holds %q, want %q", got, "first")
		}
		secret.Data["value"] = []byte("second")
		if _, err := cp.Clientset.CoreV1().Secrets(ns).Update(ctx, secret, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		updated := time.Now()
		err := framework.Eventually(ctx, time.Minute, "the kubelet to update the Secret volume", func(ctx context.Context) (bool, error) {
			got, err := fetch(url)
			return got == "second", err
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("figure: Secret update → in the Pod's volume %s", time.Since(updated).Round(100*time.Millisecond))
	})

	begin = time.Now()
	if err := cp.Clientset.CoreV1().Pods(ns).Delete(ctx, pod.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	err = framework.Eventually(ctx, time.Minute, "the kubelet to remove the Pod", func(ctx context.Context) (bool, error) {
		_, err := cp.Clientset.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		return err != nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("figure: Pod delete → gone %s", time.Since(begin).Round(100*time.Millisecond))
}

func probePod(ns string) *corev1.Pod {
	ready := func(port int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: pathFor(port), Port: intstr.FromInt32(port)}},
			PeriodSeconds: 1,
		}
	}
	nonRoot := &corev1.SecurityContext{
		RunAsNonRoot:             ptr.To(true),
		ReadOnlyRootFilesystem:   ptr.To(true),
		AllowPrivilegeEscalation: ptr.To(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: ns, Labels: map[string]string{"app": "probe"}},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{
				Name:            "sidecar",
				Image:           exporterImage,
				ImagePullPolicy: corev1.PullNever,
				RestartPolicy:   ptr.To(corev1.ContainerRestartPolicyAlways),
				Ports:           []corev1.ContainerPort{{Name: "metrics", ContainerPort: 9400}},
				ReadinessProbe:  ready(9400),
				SecurityContext: nonRoot,
			}},
			Containers: []corev1.Container{{
				Name:            "probe",
				Image:           probeImage,
				ImagePullPolicy: corev1.PullNever,
				Args:            []string{"--listen=:8080", "--token-file=/var/run/secrets/tokens/token", "--secret-file=/etc/probe-secret/value"},
				ReadinessProbe:  ready(8080),
				SecurityContext: nonRoot,
				VolumeMounts: []corev1.VolumeMount{
					{Name: "token", MountPath: "/var/run/secrets/tokens", ReadOnly: true},
					{Name: "secret", MountPath: "/etc/probe-secret", ReadOnly: true},
				},
			}},
			Volumes: []corev1.Volume{
				{Name: "token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
					Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
						Audience: tokenAudience, ExpirationSeconds: ptr.To[int64](3600), Path: "token",
					}}},
				}}},
				{Name: "secret", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "probe"}}},
			},
			TerminationGracePeriodSeconds: ptr.To[int64](2),
		},
	}
}

func pathFor(port int32) string {
	if port == 9400 {
		return "/health"
	}
	return "/healthz"
}

// execIn runs command in a container through the API server (as kubectl
// exec does, over WebSocket) and returns its standard output.
func execIn(ctx context.Context, ns, pod, container string, command ...string) (string, error) {
	req := cp.Clientset.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: container, Command: command, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	exec, err := remotecommand.NewWebSocketExecutor(cp.Config, "GET", req.URL().String())
	if err != nil {
		return "", err
	}
	var stdout, stderr bytes.Buffer
	if err := exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr}); err != nil {
		return stdout.String(), fmt.Errorf("%w: %s", err, stderr.String())
	}
	return stdout.String(), nil
}

var client = &http.Client{Timeout: 5 * time.Second}

func fetch(url string) (string, error) {
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	return string(b), err
}

func get(t *testing.T, url string) string {
	t.Helper()
	body, err := fetch(url)
	if err != nil {
		t.Fatal(err)
	}
	return body
}
