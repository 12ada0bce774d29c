package webhook

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// TestRenderedArgsAcceptedByProxy parses the proxy arguments of every injected golden Pod with the
// proxy's own flag set and configuration validation: what the webhook renders, the proxy starts
// with, and it means what the policy said.
func TestRenderedArgsAcceptedByProxy(t *testing.T) {
	files, err := filepath.Glob("testdata/mutation/*.golden.yaml")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, path := range files {
		var golden struct {
			Outcome Outcome         `json:"outcome"`
			Pod     json.RawMessage `json:"pod"`
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(raw, &golden); err != nil {
			t.Fatal(err)
		}
		if golden.Outcome != OutcomeInjected {
			continue
		}
		var pod corev1.Pod
		if err := json.Unmarshal(golden.Pod, &pod); err != nil {
			t.Fatal(err)
		}
		c := injectedProxy(&pod)
		if c == nil {
			t.Fatalf("%s: no proxy container", path)
		}
		checked++
		t.Run(strings.TrimSuffix(filepath.Base(path), ".golden.yaml"), func(t *testing.T) {
			flags := config.NewFlags("rbac-proxy")
			if err := flags.Parse(c.Args); err != nil {
				t.Fatalf("the proxy refuses %v: %v", c.Args, err)
			}
			cfg, err := flags.Config()
			if err != nil {
				t.Fatalf("the proxy's configuration of %v is invalid: %v", c.Args, err)
			}
			if w := flags.Warnings(); len(w) > 0 {
				t.Errorf("the proxy warns about %v: %v", c.Args, w)
			}
			if cfg.Upstream.URL == nil || cfg.Upstream.URL.Hostname() != "127.0.0.1" {
				t.Errorf("upstream %v is not on loopback", cfg.Upstream.URL)
			}
			if got := cfg.Listen.ProxyEndpointsPort; got == 0 || c.ReadinessProbe.HTTPGet.Port.IntValue() != got {
				t.Errorf("endpoints port %d, readiness probe on %v", got, c.ReadinessProbe.HTTPGet.Port)
			}
			if !strings.HasSuffix(cfg.Listen.SecureAddress, ":"+strconv.Itoa(int(c.Ports[0].ContainerPort))) {
				t.Errorf("listens on %s, declares port %d", cfg.Listen.SecureAddress, c.Ports[0].ContainerPort)
			}
			for _, m := range c.VolumeMounts {
				if m.Name == inject.TLSVolume && (!strings.HasPrefix(cfg.TLS.CertFile, m.MountPath+"/") || !strings.HasPrefix(cfg.TLS.KeyFile, m.MountPath+"/")) {
					t.Errorf("TLS files %s, %s are not in the mounted Secret %s", cfg.TLS.CertFile, cfg.TLS.KeyFile, m.MountPath)
				}
			}
			if cfg.TLS.ClientCAFile != "" && !mountedFile(c, cfg.TLS.ClientCAFile) {
				t.Errorf("client CA %s is not in a mounted volume", cfg.TLS.ClientCAFile)
			}
		})
	}
	if checked < 40 {
		t.Fatalf("checked %d injected Pods, want at least 40", checked)
	}
}

// injectedProxy is the injected proxy, a native sidecar (init container) or a container; nil
// when the Pod has none.
func injectedProxy(pod *corev1.Pod) *corev1.Container {
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			if cs[i].Name == inject.ContainerName {
				return &cs[i]
			}
		}
	}
	return nil
}

func mountedFile(c *corev1.Container, path string) bool {
	for _, m := range c.VolumeMounts {
		if strings.HasPrefix(path, m.MountPath+"/") {
			return true
		}
	}
	return false
}
