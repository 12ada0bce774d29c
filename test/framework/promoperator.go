package framework

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

const (
	// PrometheusOperatorModule holds prometheus-operator's CRDs (example/prometheus-operator-crd/).
	// It is not a dependency of go.mod, which would raise prometheus/prometheus and more: only
	// its monitoringAPIModule is, and the CRDs come from the same tag.
	PrometheusOperatorModule = "github.com/prometheus-operator/prometheus-operator"
	monitoringAPIModule      = PrometheusOperatorModule + "/pkg/apis/monitoring"
	prometheusOperatorCRDs   = "example/prometheus-operator-crd"
)

// PrometheusOperatorVersion is the version of prometheus-operator's typed API
// (pkg/apis/monitoring) that go.mod requires: the CRDs installed are that
// release's, so the types the code reads and the schema the API server
// validates cannot drift apart.
func PrometheusOperatorVersion(ctx context.Context) (string, error) {
	out, err := goCommand(ctx, "list", "-m", "-f", "{{.Version}}", monitoringAPIModule)
	if err != nil {
		return "", err
	}
	v := strings.TrimSpace(out)
	if v == "" {
		return "", fmt.Errorf("go.mod requires no version of %s", monitoringAPIModule)
	}
	return v, nil
}

// PrometheusOperatorCRDDir downloads (or finds in the module cache) the
// prometheus-operator module of PrometheusOperatorVersion and returns its CRD
// folder. go.mod and go.sum stay as they are.
func PrometheusOperatorCRDDir(ctx context.Context) (string, error) {
	version, err := PrometheusOperatorVersion(ctx)
	if err != nil {
		return "", err
	}
	out, err := goCommand(ctx, "mod", "download", "-json", PrometheusOperatorModule+"@"+version)
	if err != nil {
		return "", err
	}
	var mod struct{ Dir, Error string }
	if err := json.Unmarshal([]byte(out), &mod); err != nil {
		return "", fmt.Errorf("reading go mod download's answer for %s@%s: %w", PrometheusOperatorModule, version, err)
	}
	if mod.Error != "" || mod.Dir == "" {
		return "", fmt.Errorf("downloading %s@%s: %s", PrometheusOperatorModule, version, mod.Error)
	}
	dir := filepath.Join(mod.Dir, prometheusOperatorCRDs)
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("%s@%s has no CRD folder: %w", PrometheusOperatorModule, version, err)
	}
	return dir, nil
}

// InstallPrometheusOperatorCRDs installs every monitoring.coreos.com CRD
// (ServiceMonitor, PodMonitor, Prometheus, ...) of the release go.mod's
// monitoring API names, and waits until each is Established and served.
// Installing them again updates them.
func (cp *ControlPlane) InstallPrometheusOperatorCRDs(ctx context.Context) error {
	dir, err := PrometheusOperatorCRDDir(ctx)
	if err != nil {
		return err
	}
	crds, err := envtest.InstallCRDs(cp.Config, envtest.CRDInstallOptions{
		Paths: []string{dir}, ErrorIfPathMissing: true, MaxTime: time.Minute,
	})
	if err != nil {
		return fmt.Errorf("installing prometheus-operator's CRDs from %s: %w", dir, err)
	}
	for _, crd := range crds {
		err := Eventually(ctx, time.Minute, "CRD "+crd.Name+" to be Established", func(ctx context.Context) (bool, error) {
			got := &apiextensionsv1.CustomResourceDefinition{}
			if err := cp.Client.Get(ctx, client.ObjectKey{Name: crd.Name}, got); err != nil {
				return false, err
			}
			for _, c := range got.Status.Conditions {
				if c.Type == apiextensionsv1.Established {
					return c.Status == apiextensionsv1.ConditionTrue, nil
				}
			}
			return false, nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// goCommand runs the go command in the repository root and returns its
// standard output; the error holds its standard error.
func goCommand(ctx context.Context, args ...string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		// go mod download -json reports its errors on stdout, in the JSON.
		return "", fmt.Errorf("go %s: %w\n%s%s", strings.Join(args, " "), err, stderr.String(), stdout.String())
	}
	return stdout.String(), nil
}
