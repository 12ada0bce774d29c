package realnode

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/rbac-proxy/rbac-proxy/test/framework"
	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
	"github.com/rbac-proxy/rbac-proxy/webhook/scrapeconfig"
)

// scrapeConfigProm is the Prometheus that runs what scrape-config prints, beside the story's.
const scrapeConfigProm = "prometheus-scrape-config"

// testScrapeConfig: what `rbac-proxy-injector scrape-config` prints for the injected exporters
// is right where it counts. Its ServiceMonitor and PodMonitor are created against
// prometheus-operator's CRDs with strict field validation (and a broken one is refused); its
// plain `--targets static` scrape_configs, token and certificate, for the takeover Deployment
// and the redirect DaemonSet, run verbatim in Debian's Prometheus 2.42 in a Pod, which finds
// every target up and stores the DCGM series.
func testScrapeConfig(t *testing.T, e *env) {
	ctx := t.Context()
	sc := e.scrapeConfigCommand(t)

	// A Service in front of the takeover Deployment's Pods, by the name its certificate has
	// (rbac-proxy.io/dns-names), so that scrape-config prints a ServiceMonitor.
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: metricsService, Labels: map[string]string{nameLabel: metricsService}},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{nameLabel: workloads[0].name},
			Ports:    []corev1.ServicePort{{Name: exporterPortName, Port: exporterPort, TargetPort: intstr.FromString(exporterPortName)}},
		},
	}
	create(t, svc)
	t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), svc) })
	t.Run("the monitors are valid prometheus-operator objects", func(t *testing.T) { e.testMonitors(t, sc) })

	// Every exporter, by token and by certificate: one job each.
	var items []string
	var jobs []string
	for _, w := range workloads {
		for _, auth := range scrapeconfig.Auths() {
			args := []string{strings.ToLower(w.kind) + "/" + w.name, "-o", "prometheus", "--targets", "static", "--auth", string(auth)}
			if auth == scrapeconfig.AuthCert {
				args = append(args, "--client-cert-secret", clientCertSecret)
			}
			items = append(items, sc(t, args...))
			jobs = append(jobs, e.ns+"/"+w.name+"/"+string(auth))
		}
	}
	conf := "global:\n  scrape_interval: " + scrapeInterval + "\n  scrape_timeout: " + scrapeInterval + "\nscrape_configs:\n" + strings.Join(items, "")
	start := time.Now()
	prom := e.startScrapeConfigPrometheus(t, conf)
	var up []sample
	err := framework.Eventually(ctx, 60*time.Second, fmt.Sprintf("up = 1 for the %d jobs scrape-config printed", len(jobs)), func(ctx context.Context) (bool, error) {
		var err error
		up, err = prom.query(ctx, `up == 1`)
		return err == nil && len(up) == len(jobs), err
	})
	if err != nil {
		targets, _ := prom.targets(ctx)
		t.Fatalf("%v; up: %v; targets: %+v\nconfiguration:\n%s", err, up, targets, conf)
	}
	var got []string
	for _, u := range up {
		got = append(got, u.Metric["job"]+" "+u.Metric["instance"])
	}
	sort.Strings(got)
	var want []string
	for i, w := range workloads {
		for j := range scrapeconfig.Auths() {
			want = append(want, jobs[i*len(scrapeconfig.Auths())+j]+" "+e.targetOf(w.name).address())
		}
	}
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("up = 1 for %v, want %v", got, want)
	}
	figure(t, "scrape-config: Prometheus created → up = 1 on its printed jobs", "%s (%d jobs: 2 exporters × token, certificate)", time.Since(start).Round(100*time.Millisecond), len(jobs))

	series, err := prom.query(ctx, `count by (job) ({__name__=~"DCGM_FI_.+"})`)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	for _, s := range series {
		counts[s.Metric["job"]] = s.number()
	}
	var rows []string
	for _, j := range jobs {
		if counts[j] == 0 {
			t.Errorf("no DCGM series stored for job %s", j)
		}
		rows = append(rows, fmt.Sprintf("%s=%v", j, counts[j]))
	}
	figure(t, "scrape-config: DCGM series stored per printed job", "%s", strings.Join(rows, ", "))
}

// targetOf is the story's target of the workload.
func (e *env) targetOf(workload string) target {
	for _, tg := range e.targets {
		if tg.workload.name == workload {
			return tg
		}
	}
	panic("no target of " + workload)
}

// scrapeConfigCommand returns a runner of `rbac-proxy-injector scrape-config -n <exporters>`
// as an operator would run it: the cluster admin's kubeconfig and the injector's own settings,
// the chart's arguments of the webhook that scrape-config knows.
func (e *env) scrapeConfigCommand(t *testing.T) func(*testing.T, ...string) string {
	bin := e.injectorBin
	help, err := exec.CommandContext(t.Context(), bin, "scrape-config", "--help").Output()
	if err != nil {
		t.Fatalf("scrape-config --help: %v", err)
	}
	known := map[string]bool{}
	for _, m := range regexp.MustCompile(`--([a-z0-9-]+)`).FindAllStringSubmatch(string(help), -1) {
		known[m[1]] = true
	}
	base := []string{"scrape-config", "--kubeconfig", cp.KubeconfigPath, "-n", e.ns}
	for _, a := range e.injector.Args {
		name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if known[name] && name != "kubeconfig" && name != "context" && name != "namespace" {
			base = append(base, a)
		}
	}
	return func(t *testing.T, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), bin, append(base, args...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("rbac-proxy-injector %s: %v\n%s", strings.Join(append(base, args...), " "), err, stderr.String())
		}
		if stderr.Len() > 0 {
			t.Logf("scrape-config %s: %s", strings.Join(args, " "), stderr.String())
		}
		return stdout.String()
	}
}

// testMonitors: the API server, with prometheus-operator's CRDs of the version go.mod's typed
// API names, accepts the ServiceMonitor (token and certificate) and the PodMonitor scrape-config
// prints, and the Prometheus part of each one's comment, under strict field validation, and
// refuses the monitors with an unknown field or a scheme outside the CRD's enum: the schema is
// checked, not only stored.
func (e *env) testMonitors(t *testing.T, sc func(*testing.T, ...string) string) {
	ctx := t.Context()
	if err := cp.InstallPrometheusOperatorCRDs(ctx); err != nil {
		t.Fatal(err)
	}
	deploy := "deployment/" + workloads[0].name
	printed := map[string]string{
		"ServiceMonitor, token":       sc(t, deploy),
		"ServiceMonitor, certificate": sc(t, deploy, "--auth", "cert", "--client-cert-secret", clientCertSecret),
		"PodMonitor, token":           sc(t, "daemonset/"+workloads[1].name),
	}
	strict := client.FieldValidation(metav1.FieldValidationStrict)
	for what, text := range printed {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(text), &u.Object); err != nil {
			t.Fatalf("%s: %v\n%s", what, err, text)
		}
		if kind, _, _ := strings.Cut(what, ","); u.GetKind() != kind {
			t.Fatalf("%s: scrape-config printed a %s:\n%s", what, u.GetKind(), text)
		}
		u.SetName(objectName(what))
		if err := cp.Client.Create(ctx, u.DeepCopy(), strict); err != nil {
			t.Errorf("%s: the API server refuses it: %v\n%s", what, err, text)
			continue
		}
		t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), u) })
		e.createPrometheusPart(t, what, text, u)

		endpoints := "endpoints"
		if u.GetKind() == "PodMonitor" {
			endpoints = "podMetricsEndpoints"
		}
		for broken, edit := range map[string]func(ep map[string]any){
			`unknown field "spec.` + endpoints + `[0].bearerTokenFiles"`: func(ep map[string]any) { ep["bearerTokenFiles"] = "/token" },
			`Unsupported value: "ftp"`:                                   func(ep map[string]any) { ep["scheme"] = "ftp" },
		} {
			b := u.DeepCopy()
			b.SetName(u.GetName() + "-broken")
			eps, _, _ := unstructured.NestedSlice(b.Object, "spec", endpoints)
			edit(eps[0].(map[string]any))
			if err := unstructured.SetNestedSlice(b.Object, eps, "spec", endpoints); err != nil {
				t.Fatal(err)
			}
			err := cp.Client.Create(ctx, b, strict)
			if err == nil {
				_ = cp.Client.Delete(context.Background(), b)
			}
			if err == nil || !strings.Contains(err.Error(), broken) {
				t.Errorf("%s with %s: the API server answers %v; want a refusal", what, broken, err)
			}
		}
	}
	figure(t, "scrape-config: objects the API server accepts (strict) / broken monitors refused", "%d monitors + %d Prometheus parts / %d", len(printed), len(printed), 2*len(printed))
}

// createPrometheusPart: the Prometheus part in the comment before the monitor, which an
// operator merges into the Prometheus, is a Prometheus the API server accepts under strict field
// validation, in Prometheus' namespace; its one scrape class is the one the monitor names and,
// for a client certificate, mounts that certificate's Secret.
func (e *env) createPrometheusPart(t *testing.T, what, text string, monitor *unstructured.Unstructured) {
	t.Helper()
	part := scrapeconfig.PrometheusPartIn(text)
	p := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(part), &p.Object); err != nil || part == "" {
		t.Fatalf("%s: the comment's Prometheus part: %v\n%s", what, err, text)
	}
	classes, _, _ := unstructured.NestedSlice(p.Object, "spec", "scrapeClasses")
	class, _, _ := unstructured.NestedString(monitor.Object, "spec", "scrapeClass")
	secrets, _, _ := unstructured.NestedStringSlice(p.Object, "spec", "secrets")
	if len(classes) != 1 || classes[0].(map[string]any)["name"] != class || p.GetKind() != "Prometheus" || p.GetNamespace() != monitoringNS {
		t.Fatalf("%s: the Prometheus part's scrape classes %v, not one named %q as the monitor's, or it is no Prometheus in %s:\n%s", what, classes, class, monitoringNS, text)
	}
	if strings.HasSuffix(what, "certificate") != slices.Equal(secrets, []string{clientCertSecret}) {
		t.Errorf("%s: the Prometheus part mounts Secrets %v", what, secrets)
	}
	p.SetName(objectName(what))
	if err := cp.Client.Create(t.Context(), p, client.FieldValidation(metav1.FieldValidationStrict)); err != nil {
		t.Fatalf("%s: the API server refuses the Prometheus part: %v\n%s", what, err, text)
	}
	t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), p) })
}

// objectName is the object name of a printed object, by what it is.
func objectName(what string) string { return strings.ReplaceAll(strings.ToLower(what), ", ", "-") }

// startScrapeConfigPrometheus runs Debian's Prometheus as the story's allowed scraper's
// ServiceAccount with conf, its files where scrape-config's configuration reads them: the
// serving CA of each exporter (copied, ca.crt alone, into a Secret of the same name in
// Prometheus' namespace), the client certificate's Secret, and the projected token of the
// exporters' audience.
func (e *env) startScrapeConfigPrometheus(t *testing.T, conf string) *promAPI {
	ctx := t.Context()
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: monitoringNS, Name: scrapeConfigProm + "-config"},
		Data:       map[string]string{"prometheus.yml": conf},
	}
	token := &scrapeconfig.Scrape{Audience: inject.LocalAudience(e.ns)}
	volumes := []corev1.Volume{
		{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: cm.Name}}}},
		{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		token.TokenVolume(),
	}
	mounts := []corev1.VolumeMount{
		{Name: "config", MountPath: configDir, ReadOnly: true},
		{Name: "data", MountPath: "/prometheus"},
		token.TokenVolumeMount(),
	}
	objs := []client.Object{cm}
	secrets := []string{clientCertSecret}
	for _, w := range workloads {
		name := tlsSecretOf(e.pods[w.name])
		served, err := cp.Clientset.CoreV1().Secrets(e.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: monitoringNS, Name: name},
			Data:       map[string][]byte{inject.CAKey: served.Data[inject.CAKey]},
		})
		secrets = append(secrets, name)
	}
	for _, s := range secrets {
		volumes = append(volumes, corev1.Volume{Name: s, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: s}}})
		mounts = append(mounts, corev1.VolumeMount{Name: s, MountPath: scrapeconfig.SecretsDir + "/" + s, ReadOnly: true})
	}
	pod := prometheusPod(scrapeConfigProm, allowed().name, volumes, mounts)
	create(t, append(objs, pod)...)
	t.Cleanup(func() {
		for _, o := range append(objs, pod) {
			_ = cp.Client.Delete(context.Background(), o)
		}
	})
	pods, err := cp.WaitPodsReady(ctx, monitoringNS, nameLabel+"="+scrapeConfigProm, 1, 2*time.Minute)
	if err != nil {
		t.Fatalf("Prometheus %s: %v\nconfiguration:\n%s", scrapeConfigProm, err, conf)
	}
	return newPromAPI(pods[0].Status.PodIP)
}
