package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/rbac-proxy/rbac-proxy/webhook/check"
)

// injectorObjects are the chart's webhook configuration, Service and Deployment, its injector
// running serve with args.
func injectorObjects(args ...string) []client.Object {
	labels := map[string]string{check.InjectorLabel: check.InjectorLabelValue}
	return []client.Object{
		&admissionregistrationv1.MutatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: "rbac-proxy-injector"},
			Webhooks: []admissionregistrationv1.MutatingWebhook{{Name: "pod.inject.rbac-proxy.io", ClientConfig: admissionregistrationv1.WebhookClientConfig{
				Service: &admissionregistrationv1.ServiceReference{Namespace: "rbac-proxy", Name: "rbac-proxy-injector"},
			}}},
		},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "rbac-proxy", Name: "rbac-proxy-injector"}, Spec: corev1.ServiceSpec{Selector: labels}},
		injectorDeployment(args...),
	}
}

func injectorDeployment(args ...string) *appsv1.Deployment {
	labels := map[string]string{check.InjectorLabel: check.InjectorLabelValue}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "rbac-proxy", Name: "rbac-proxy-injector", Labels: labels},
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: labels},
			Spec: corev1.PodSpec{Containers: []corev1.Container{
				{Name: "injector", Command: []string{"/rbac-proxy-injector"}, Args: append([]string{"serve"}, args...)},
			}},
		}},
	}
}

// TestDeploymentSettings: the injector Deployment's arguments are read by serve's own flags; what
// they cannot say (a flag this version does not know, a bad value, a file in the container) is an
// error naming the Deployment and the flag.
func TestDeploymentSettings(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		// want is the proxy image and allowed issuers read; err what the error says, in order.
		want []string
		err  []string
	}{
		{"the chart's", []string{"--webhook-port=9443", "--metrics-secure=true", "--proxy-image=r.example/rbac-proxy:v2", "--default-issuer=ClusterIssuer/ca", "--allowed-issuers=Issuer/*", "--allowed-issuers=ClusterIssuer/team"},
			[]string{"r.example/rbac-proxy:v2", "Issuer/*", "ClusterIssuer/team"}, nil},
		{"a flag this version does not know", []string{"--proxy-image=r/p:v2", "--proxy-colour=blue"},
			nil, []string{"Deployment rbac-proxy/rbac-proxy-injector", "container injector", "--proxy-colour"}},
		{"a bad value", []string{"--proxy-port=many"},
			nil, []string{"Deployment rbac-proxy/rbac-proxy-injector", `"many"`, "--proxy-port"}},
		{"an invalid setting", []string{"--sidecar-mode=sideways"},
			nil, []string{"Deployment rbac-proxy/rbac-proxy-injector", "sidecarMode", "sideways"}},
		{"a config file in its container", []string{"--config=/etc/rbac-proxy-injector/config.yaml"},
			nil, []string{"Deployment rbac-proxy/rbac-proxy-injector", "--config=/etc/rbac-proxy-injector/config.yaml", "--injector=none"}},
		{"an argument", []string{"extra"},
			nil, []string{"Deployment rbac-proxy/rbac-proxy-injector", "unexpected arguments"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := deploymentSettings(injectorDeployment(tc.args...))
			if tc.err != nil {
				if err == nil {
					t.Fatalf("no error, settings %+v", cfg)
				}
				rest := err.Error()
				for _, w := range tc.err {
					i := strings.Index(rest, w)
					if i < 0 {
						t.Fatalf("error %q lacks %q (in this order: %q)", err, w, tc.err)
					}
					rest = rest[i+len(w):]
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := append([]string{cfg.ProxyImage}, cfg.AllowedIssuers...); !slices.Equal(got, tc.want) {
				t.Errorf("image and allowed issuers %q, want %q", got, tc.want)
			}
		})
	}
	noServe := injectorDeployment()
	noServe.Spec.Template.Spec.Containers[0].Args = []string{"inject"}
	if _, err := deploymentSettings(noServe); err == nil || !strings.Contains(err.Error(), "no container that runs rbac-proxy-injector serve") {
		t.Errorf("a Deployment that runs no serve: %v", err)
	}
}

// TestInjectorSettings: --injector decides what the settings flags go on top of; a flag given on
// the command line wins over the Deployment, its --config file's keys too.
func TestInjectorSettings(t *testing.T) {
	s, err := check.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	objs := injectorObjects("--proxy-image=r.example/rbac-proxy:v2", "--default-issuer=ClusterIssuer/ca", "--proxy-port=9443")
	cluster := fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).Build()
	empty := fake.NewClientBuilder().WithScheme(s).Build()
	file := filepath.Join(t.TempDir(), "settings.yaml")
	if err := os.WriteFile(file, []byte("proxyPort: 9555\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		cluster client.Reader
		args    []string
		// image, issuer and port are the settings; source and reason where they come from.
		image, issuer string
		port          int32
		source        string
		reason        string
		err           string
	}{
		{"auto", cluster, nil, "r.example/rbac-proxy:v2", "ClusterIssuer/ca", 9443, "Deployment rbac-proxy/rbac-proxy-injector", "", ""},
		{"auto, flags win", cluster, []string{"--proxy-image=mine:v9", "--proxy-port=9000"}, "mine:v9", "ClusterIssuer/ca", 9000, "Deployment rbac-proxy/rbac-proxy-injector", "", ""},
		{"auto, a config file wins", cluster, []string{"--config=" + file}, "r.example/rbac-proxy:v2", "ClusterIssuer/ca", 9555, "Deployment rbac-proxy/rbac-proxy-injector", "", ""},
		{"by name", cluster, []string{"--injector=rbac-proxy/rbac-proxy-injector"}, "r.example/rbac-proxy:v2", "ClusterIssuer/ca", 9443, "Deployment rbac-proxy/rbac-proxy-injector", "", ""},
		{"none", cluster, []string{"--injector=none", "--proxy-image=mine:v9"}, "mine:v9", "", 8443, "flags", "--injector=none", ""},
		{"auto, no injector", empty, []string{"--proxy-image=mine:v9"}, "mine:v9", "", 8443, "flags", "no MutatingWebhookConfiguration has a webhook *.inject.rbac-proxy.io: pass --injector=NAMESPACE/NAME or the injector's settings flags", ""},
		{"by name, not there", empty, []string{"--injector=rbac-proxy/rbac-proxy-injector"}, "", "", 0, "", "", "--injector=rbac-proxy/rbac-proxy-injector: deployment not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := &checkOptions{}
			fs := newCheckFlags(o)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			if _, err := o.defaults.load(fs); err != nil {
				t.Fatal(err)
			}
			d, settings, err := o.injector.load(t.Context(), tc.cluster, &o.defaults, fs)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			issuer := ""
			if d.Issuer != nil {
				issuer = d.Issuer.String()
			}
			if d.Image != tc.image || issuer != tc.issuer || d.ProxyPort != tc.port {
				t.Errorf("image %q issuer %q port %d, want %q %q %d", d.Image, issuer, d.ProxyPort, tc.image, tc.issuer, tc.port)
			}
			if settings.Source != tc.source || settings.Reason != tc.reason {
				t.Errorf("settings %+v, want source %q reason %q", settings, tc.source, tc.reason)
			}
		})
	}
}
