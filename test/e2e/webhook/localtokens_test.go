package webhook_test

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/rbac-proxy/rbac-proxy/internal/testpki"
	"github.com/rbac-proxy/rbac-proxy/proxy/config"
	"github.com/rbac-proxy/rbac-proxy/test/framework"
	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// TestLocalTokenVerification: a Pod annotated rbac-proxy.io/token-verification: local is admitted
// with a proxy command line that the proxy's own flags read as local verification with the
// namespace's audience; its ServiceAccount may read the issuer discovery through the API server's
// default binding; and that command line, run against this control plane (with the Pod's paths
// and addresses swapped for the test's), lets Prometheus' token for the audience in with no
// TokenReview, and refuses a token for the API server without one either.
func TestLocalTokenVerification(t *testing.T) {
	ctx := t.Context()
	ns := labelledNamespace(t, "localtokens")
	pod := simplePod(ns, "exporter")
	pod.Annotations = map[string]string{inject.AnnotationTokenVerification: "local"}
	if err := cp.Client.Create(ctx, pod); err != nil {
		t.Fatalf("the Pod is not admitted: %v", err)
	}
	var stored corev1.Pod
	if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(pod), &stored); err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(stored.Spec.InitContainers, func(c corev1.Container) bool { return c.Name == inject.ContainerName })
	if i < 0 {
		t.Fatalf("no %s sidecar in %v", inject.ContainerName, names(stored.Spec.InitContainers))
	}
	args := stored.Spec.InitContainers[i].Args
	audience := inject.LocalAudience(ns)
	checkLocal := func(args []string) {
		t.Helper()
		c, err := inject.ProxyConfigOf(args)
		if err != nil {
			t.Fatalf("the proxy refuses %q: %v", args, err)
		}
		if v, aud := c.Authentication.ServiceAccounts.Verification, c.Authentication.Audiences; v != config.SATokensLocal || !slices.Equal(aud, []string{audience}) {
			t.Fatalf("the proxy reads %q as %s verification with audiences %q, want local with %q", args, v, aud, audience)
		}
	}
	checkLocal(args)

	// The proxy reads the issuer and its keys with the Pod's ServiceAccount (default): the API
	// server's own binding lets every ServiceAccount.
	for _, path := range []string{"/.well-known/openid-configuration", "/openid/v1/jwks"} {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:                  "system:serviceaccount:" + ns + ":default",
			Groups:                []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
			NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: path, Verb: "get"},
		}}
		if err := cp.Client.Create(ctx, sar); err != nil {
			t.Fatal(err)
		}
		if !sar.Status.Allowed {
			t.Errorf("the Pod's ServiceAccount may not GET %s: %s", path, sar.Status.Reason)
		}
	}
	var discovery rbacv1.ClusterRoleBinding
	if err := cp.Client.Get(ctx, client.ObjectKey{Name: "system:service-account-issuer-discovery"}, &discovery); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(discovery.Subjects, func(s rbacv1.Subject) bool { return s.Kind == rbacv1.GroupKind && s.Name == "system:serviceaccounts" }) {
		t.Errorf("the default binding %s binds %v, not the group system:serviceaccounts", discovery.Name, discovery.Subjects)
	}

	// The Pod's command line, but for what the test gives instead: its port, certificate,
	// upstream and the API server's address and the ServiceAccount's token (the Pod's
	// in-cluster configuration).
	bin, err := framework.Build(ctx, "./cmd/proxy")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(bin)) })
	ca, err := testpki.NewCA("localtokens")
	if err != nil {
		t.Fatal(err)
	}
	serving, err := ca.Server("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := serving.Write(t.TempDir(), "tls")
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := cp.ServiceAccountKubeconfig(ctx, ns, "default")
	if err != nil {
		t.Fatal(err)
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("gpu_temp 41\n")) }))
	t.Cleanup(up.Close)
	swapped := []string{"secure-listen-address", "proxy-endpoints-port", "tls-cert-file", "tls-private-key-file", "upstream"}
	var run []string
	for _, a := range args {
		name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !slices.Contains(swapped, name) {
			run = append(run, a)
		}
	}
	run = append(run, "--tls-cert-file="+certFile, "--tls-private-key-file="+keyFile, "--upstream="+up.URL+"/", "--kubeconfig="+kubeconfig)
	// Authorization is still the Pod's: a SubjectAccessReview, with the ServiceAccount's rights to
	// create one, of Prometheus' right to GET /metrics.
	for _, obj := range []client.Object{
		&rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "localtokens-auth-delegator-"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:auth-delegator"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "default"}},
		},
		&rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{Name: ns + "-metrics"},
			Rules:      []rbacv1.PolicyRule{{Verbs: []string{"get"}, NonResourceURLs: []string{"/metrics"}}},
		},
		&rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: ns + "-metrics"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: ns + "-metrics"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "prometheus"}},
		},
	} {
		if err := cp.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cp.Client.Delete(t.Context(), obj) })
	}
	proxy := framework.StartTestProxy(t, bin, framework.ProxyOptions{Args: run})
	checkLocal(proxy.Args)

	scraper := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	scrape := func(token string) int {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, proxy.URL+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := scraper.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	forProxy := cp.TestToken(t, ns, "prometheus", audience)
	forAPIServer := cp.TestToken(t, ns, "prometheus")
	// The README's Prometheus, whose kubelet gets it such a token: the API server accepts it.
	prometheus := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "prometheus", Annotations: map[string]string{inject.AnnotationInject: "false"}},
		Spec: corev1.PodSpec{
			ServiceAccountName: "prometheus",
			Containers: []corev1.Container{{Name: "prometheus", Image: "quay.io/prometheus/prometheus:v3", VolumeMounts: []corev1.VolumeMount{
				{Name: "rbac-proxy-token", MountPath: "/var/run/secrets/rbac-proxy", ReadOnly: true}}}},
			Volumes: []corev1.Volume{{Name: "rbac-proxy-token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
				Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: audience, ExpirationSeconds: ptr.To[int64](3600), Path: "token"}}}}}}},
		},
	}
	if err := cp.Client.Create(ctx, prometheus, client.DryRunAll); err != nil {
		t.Errorf("the API server refuses the README's Prometheus Pod: %v", err)
	}
	// The SubjectAccessReview's RBAC may take a moment to reach the authorizer's cache.
	err = framework.Eventually(ctx, 30*time.Second, "Prometheus' first scrape", func(context.Context) (bool, error) {
		return scrape(forProxy) == http.StatusOK, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	before := tokenReviews(t)
	for range 20 {
		if code := scrape(forProxy); code != http.StatusOK {
			t.Fatalf("a token for %q: %d, want 200", audience, code)
		}
	}
	if code := scrape(forAPIServer); code != http.StatusUnauthorized {
		t.Errorf("a token for the API server: %d, want 401", code)
	}
	if n := tokenReviews(t) - before; n != 0 {
		t.Errorf("%d TokenReviews for 20 scrapes and a refusal, want 0", n)
	}
}

// tokenReviews is the API server's own count of the TokenReviews it has answered.
func tokenReviews(t *testing.T) int {
	t.Helper()
	n, err := cp.RequestsTotal(t.Context(), "tokenreviews")
	if err != nil {
		t.Fatal(err)
	}
	return n
}
