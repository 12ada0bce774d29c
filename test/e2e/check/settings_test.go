package check

import (
	"context"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/rbac-proxy/rbac-proxy/test/framework"
	webhookcheck "github.com/rbac-proxy/rbac-proxy/webhook/check"
	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// Without any settings flag, check judges with the arguments of the chart's Deployment, upgraded
// to the next proxy image: the same findings as with the upgraded injector's flags, StaleProxy
// among them. The chart's webhooks call a URL here (the injector runs as a process beside the
// control plane), so the Deployment is found by its label, in the release's namespace, which the
// webhook configuration names; one labelled like it in a tenant's namespace, with the stale image
// as its --proxy-image, changes nothing; a second one in the release's namespace makes check
// refuse to guess.
func TestCheckUsesTheInjectorsSettings(t *testing.T) {
	c := setup(t)
	chart := webhookcheck.SettingsFromDeployment(framework.ReleaseNamespace, framework.ReleaseFullname)
	args := []string{"-A", "-o", "json", "--scraper", c.scraper}

	r := c.checkBare(t, cp.KubeconfigPath, args...)
	if r.code != 1 {
		t.Errorf("check %q exited %d, want 1\nstderr:\n%s", r.args, r.code, r.stderr)
	}
	rep := r.report(t)
	t.Logf("check %q: settings %s", r.args, rep.Settings)
	if rep.Settings.Source != chart || !strings.Contains(rep.Settings.Reason, "found by its label app.kubernetes.io/name=rbac-proxy-injector in namespace "+framework.ReleaseNamespace) {
		t.Errorf("settings %+v, want from %s, found by its label", rep.Settings, chart)
	}
	if !assertFindings(t, findings(rep), c.wantFindings()) {
		t.Logf("check %q:\n%s", r.args, r.stdout)
	}
	if with := c.check(t, cp.KubeconfigPath, args...).report(t); with.Settings.Source != chart {
		t.Errorf("with the settings flags given, settings %+v, want from %s (the flags on top)", with.Settings, chart)
	}
	table := c.checkBare(t, cp.KubeconfigPath, "-A", "--scraper", c.scraper)
	if first, _, _ := strings.Cut(string(table.stdout), "\n"); !strings.HasPrefix(first, "settings: from "+chart+" (") {
		t.Errorf("the table's first line is %q, want the settings from %s", first, chart)
	}

	// The built-in defaults inject another image: every injected workload would be stale.
	none := c.checkBare(t, cp.KubeconfigPath, append(args, "--injector=none")...).report(t)
	if none.Settings != (webhookcheck.Settings{Source: webhookcheck.SettingsFromFlags, Reason: "--injector=none"}) {
		t.Errorf("--injector=none: settings %+v", none.Settings)
	}
	if !slices.ContainsFunc(findings(none), func(f finding) bool {
		return f.Code == webhookcheck.CodeStaleProxy && f.Workload == workloadRef(c.gpu, healthy)
	}) {
		t.Errorf("--injector=none, judged by the built-in proxy image, found no StaleProxy on %s: %v", healthy, findings(none))
	}

	// A tenant's Deployment labelled and run like the injector's, saying the stale proxy is current.
	staleProxy := inject.ProxyContainer(c.podOf(t, c.gpu, stale))
	if staleProxy == nil {
		t.Fatalf("%s's Pod runs no proxy", stale)
	}
	forged := injectorLike(c.plain, "rbac-proxy-injector", "--proxy-image="+staleProxy.Image)
	if err := c.create(t.Context(), forged); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.client.Delete(context.Background(), forged); err != nil {
			t.Errorf("deleting the forged Deployment: %v", err)
		}
	})
	rep = c.checkBare(t, cp.KubeconfigPath, args...).report(t)
	if rep.Settings.Source != chart {
		t.Errorf("with a forged injector Deployment in %s: settings %+v, want from %s", c.plain, rep.Settings, chart)
	}
	assertFindings(t, findings(rep), c.wantFindings())

	// A second injector in the release's namespace: check does not guess.
	second := injectorLike(framework.ReleaseNamespace, "second-injector", "--proxy-image="+c.proxyImage)
	if err := c.create(t.Context(), second); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.client.Delete(context.Background(), second); err != nil {
			t.Errorf("deleting the second injector Deployment: %v", err)
		}
	})
	r = c.checkBare(t, cp.KubeconfigPath, args...)
	rep = r.report(t)
	if rep.Settings.Source != webhookcheck.SettingsFromFlags || !strings.Contains(rep.Settings.Reason, "several Deployments labelled") {
		t.Errorf("with two injector Deployments in %s: settings %+v, want the flags, saying there are several", framework.ReleaseNamespace, rep.Settings)
	}
}

// podOf is a Pod of the workload name in namespace ns, as the API server holds it.
func (c *cluster) podOf(t *testing.T, ns, name string) *corev1.Pod {
	t.Helper()
	var pods corev1.PodList
	if err := c.client.List(t.Context(), &pods, client.InNamespace(ns), client.MatchingLabels{"app": name}); err != nil || len(pods.Items) == 0 {
		t.Fatalf("the Pods of %s/%s: %d, %v", ns, name, len(pods.Items), err)
	}
	return &pods.Items[0]
}

// injectorLike is a Deployment labelled and run like the chart's injector, with no Pods.
func injectorLike(ns, name string, args ...string) *appsv1.Deployment {
	labels := map[string]string{webhookcheck.InjectorLabel: webhookcheck.InjectorLabelValue, "app.kubernetes.io/instance": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](0),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "injector", Image: "registry.example/rbac-proxy-injector:forged",
					Command: []string{"/rbac-proxy-injector"}, Args: append([]string{"serve"}, args...),
				}}},
			},
		},
	}
}

// A ServiceAccount bound to the chart's ClusterRole <release>-checker alone (a CI job's) checks
// the whole cluster with nothing left unchecked, the injector's settings found: what the admin
// finds.
func TestCheckWithTheChartsCheckerRole(t *testing.T) {
	c := setup(t)
	ctx := t.Context()
	const checker = "checker"
	err := c.create(ctx,
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: c.monitoring, Name: checker}},
		&rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "e2e-check-checker"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: framework.ReleaseFullname + "-checker"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: c.monitoring, Name: checker}},
		})
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := cp.ServiceAccountKubeconfig(ctx, c.monitoring, checker)
	if err != nil {
		t.Fatal(err)
	}
	r := c.checkBare(t, kubeconfig, "-A", "-o", "json", "--scraper", c.scraper)
	if r.code != 1 {
		t.Errorf("check %q as %s exited %d, want 1\nstderr:\n%s", r.args, checker, r.code, r.stderr)
	}
	rep := r.report(t)
	if len(rep.Unchecked) > 0 {
		t.Errorf("bound to %s-checker, check could not check %+v", framework.ReleaseFullname, rep.Unchecked)
	}
	if want := webhookcheck.SettingsFromDeployment(framework.ReleaseNamespace, framework.ReleaseFullname); rep.Settings.Source != want {
		t.Errorf("settings %+v, want from %s", rep.Settings, want)
	}
	if !assertFindings(t, findings(rep), c.wantFindings()) {
		t.Logf("check %q:\n%s", r.args, r.stdout)
	}
}
