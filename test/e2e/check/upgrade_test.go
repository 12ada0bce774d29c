package check

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/rbac-proxy/rbac-proxy/test/framework"
	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// upgraded is the injector process that replaced the chart's, stopped after the tests.
var upgraded struct {
	mu  sync.Mutex
	cmd *exec.Cmd
}

// upgradeInjector stops the chart's webhook and starts the same binary with the same arguments
// but the next release's proxy image, as an upgrade does: Pods injected before keep the older
// proxy. It returns once the API server's admissions come back with the new image.
func (c *cluster) upgradeInjector(ctx context.Context, inj *framework.Injector) error {
	var args []string
	for _, a := range inj.Args {
		if image, ok := strings.CutPrefix(a, "--proxy-image="); ok {
			c.proxyImage = image + "-next"
			a = "--proxy-image=" + c.proxyImage
		}
		args = append(args, a)
	}
	if c.proxyImage == "" {
		return fmt.Errorf("the chart's webhook has no --proxy-image: %q", inj.Args)
	}
	c.settings = settingArgs(args)
	if err := c.upgradeChartDeployment(ctx); err != nil {
		return err
	}
	if err := inj.Stop(); err != nil {
		return err
	}
	logPath := filepath.Join(cp.Dir, "rbac-proxy-injector-upgraded.log")
	log, err := os.Create(logPath)
	if err != nil {
		return err
	}
	cmd := exec.Command(c.bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("starting the upgraded injector: %w", err)
	}
	log.Close()
	upgraded.mu.Lock()
	upgraded.cmd = cmd
	upgraded.mu.Unlock()
	c.injectorLog = func() string { return tail(logPath, 8000) }

	return framework.Eventually(ctx, time.Minute, "the upgraded injector to inject "+c.proxyImage, func(ctx context.Context) (bool, error) {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: c.gpu, Name: "probe"},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "app", Image: appImage, Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: appPort}},
			}}},
		}
		if err := c.client.Create(ctx, pod, client.DryRunAll); err != nil {
			return false, err
		}
		p := inject.ProxyContainer(pod)
		return p != nil && p.Image == c.proxyImage, nil
	})
}

// upgradeChartDeployment sets the chart Deployment's --proxy-image to the upgraded one, as
// helm upgrade does: the settings check reads from it are those the upgraded injector runs with.
func (c *cluster) upgradeChartDeployment(ctx context.Context) error {
	dep := &appsv1.Deployment{}
	if err := c.client.Get(ctx, client.ObjectKey{Namespace: framework.ReleaseNamespace, Name: framework.ReleaseFullname}, dep); err != nil {
		return fmt.Errorf("the chart's Deployment: %w", err)
	}
	args := dep.Spec.Template.Spec.Containers[0].Args
	i := slices.IndexFunc(args, func(a string) bool { return strings.HasPrefix(a, "--proxy-image=") })
	if i < 0 {
		return fmt.Errorf("the chart's Deployment has no --proxy-image: %q", args)
	}
	args[i] = "--proxy-image=" + c.proxyImage
	return c.client.Update(ctx, dep)
}

// stopUpgradedInjector stops the upgraded injector, if it was started.
func stopUpgradedInjector() {
	upgraded.mu.Lock()
	defer upgraded.mu.Unlock()
	if upgraded.cmd == nil {
		return
	}
	_ = upgraded.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = upgraded.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = upgraded.cmd.Process.Kill()
		<-done
	}
}

// tail is the last n bytes of the file at path.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		_, _ = f.Seek(st.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}
