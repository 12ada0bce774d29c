package story

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rbac-proxy/rbac-proxy/webhook/check"
)

// LegacyExporter is the dcgm-exporter Pod the story starts in a namespace that never opted in:
// what `check` is for.
const LegacyExporter = "dcgm-exporter-legacy"

// checkCluster is step 6: an unprotected dcgm-exporter appears in a namespace nobody labelled,
// and `rbac-proxy-injector check -A`, run as an operator would (the admin's kubeconfig, the
// settings read from the injector's Deployment, Prometheus' identity as the scraper), reports
// it, and nothing about the two protected exporters.
func checkCluster(ctx context.Context, s *teller, env *Env) ([]Check, error) {
	cp := env.CP
	ns, err := cp.CreateNamespace(ctx, "legacy", nil)
	if err != nil {
		return nil, err
	}
	image := ExporterImage
	if env.onNode() {
		image = env.exporterImage
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: LegacyExporter, Labels: map[string]string{"app.kubernetes.io/name": LegacyExporter}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: exporterContainer, Image: image, ImagePullPolicy: corev1.PullIfNotPresent,
			Ports: []corev1.ContainerPort{{Name: exporterPortName, ContainerPort: ExporterPort, Protocol: corev1.ProtocolTCP}},
		}}},
	}
	if err := cp.Client.Create(ctx, pod); err != nil {
		return nil, fmt.Errorf("creating Pod %s/%s: %w", ns, pod.Name, err)
	}
	s.printf("        namespace %s (not labelled): Pod %s, dcgm-exporter without a proxy\n", ns, pod.Name)

	scraper := "system:serviceaccount:" + env.Namespace + ":" + PrometheusSA
	args := []string{"check", "-A", "--scraper", scraper, "--kubeconfig", cp.KubeconfigPath}
	s.progress("rbac-proxy-injector %s", strings.Join(args[:4], " "))
	table, code, err := runCheck(ctx, env.injectorBin, append(args, "-o", "table"))
	if err != nil {
		return nil, err
	}
	for _, l := range strings.Split(strings.TrimRight(table, "\n"), "\n") {
		s.printf("        %s\n", l)
	}
	out, jsonCode, err := runCheck(ctx, env.injectorBin, append(args, "-o", "json"))
	if err != nil {
		return nil, err
	}
	var report check.Report
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		return nil, fmt.Errorf("reading check -o json: %w\n%s", err, out)
	}

	var legacy, protected []string
	for _, f := range report.Findings {
		switch {
		case f.Object.Namespace == ns:
			legacy = append(legacy, string(f.Code)+" on "+f.Object.Kind+" "+f.Object.Name)
		case f.Object.Namespace == env.Namespace, f.Workload != nil && f.Workload.Namespace == env.Namespace:
			protected = append(protected, string(f.Code)+" on "+f.Object.Kind+" "+f.Object.Name)
		}
	}
	injected := 0
	for _, w := range report.Workloads {
		if w.Namespace == env.Namespace && w.Injection.State == check.StateInjected {
			injected++
		}
	}
	sort.Strings(legacy)
	sort.Strings(protected)
	wantLegacy := string(check.CodeUnprotectedExporter) + " on Pod " + LegacyExporter
	return []Check{
		{
			Name:     "check -A: the dcgm-exporter nobody protected, in " + ns,
			Expected: wantLegacy + ", exit 1",
			Got:      fmt.Sprintf("%s, exit %d", orNone(legacy), code),
			OK:       len(legacy) == 1 && legacy[0] == wantLegacy && code == 1 && jsonCode == 1,
		},
		{
			Name:     "check -A: " + SARExporter + " and " + StaticExporter + " in " + env.Namespace,
			Expected: "2 injected, no finding",
			Got:      fmt.Sprintf("%d injected, %s", injected, orNone(protected)),
			OK:       injected == 2 && len(protected) == 0,
		},
	}, nil
}

// runCheck runs the injector's check and returns its standard output and exit status; only a
// status above 1 (it could not check) is an error.
func runCheck(ctx context.Context, bin string, args []string) (string, int, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return stdout.String(), 0, nil
	case errors.As(err, &exit) && exit.ExitCode() == 1:
		return stdout.String(), 1, nil
	}
	return "", 0, fmt.Errorf("rbac-proxy-injector %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
}

func orNone(list []string) string {
	if len(list) == 0 {
		return "no finding"
	}
	return strings.Join(list, "; ")
}
