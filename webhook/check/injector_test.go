package check

import (
	"context"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	injectorNS   = "rbac-proxy"
	injectorName = "rbac-proxy-rbac-proxy-injector"
)

// injectorConfig is the chart's webhook configuration: its two webhooks calling the Service
// injectorNS/injectorName, or url; Helm's and cert-manager's annotations naming injectorNS.
func injectorConfig(url string, annotated bool) admissionregistrationv1.MutatingWebhookConfiguration {
	cc := admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{Namespace: injectorNS, Name: injectorName}}
	if url != "" {
		cc = admissionregistrationv1.WebhookClientConfig{URL: &url}
	}
	c := admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: injectorName},
		Webhooks: []admissionregistrationv1.MutatingWebhook{
			{Name: "namespace.inject.rbac-proxy.io", ClientConfig: cc},
			{Name: "pod.inject.rbac-proxy.io", ClientConfig: cc},
		},
	}
	if annotated {
		c.Annotations = map[string]string{
			releaseNamespaceAnnotation: injectorNS,
			injectCAFromAnnotation:     injectorNS + "/" + injectorName + "-serving",
		}
	}
	return c
}

// injectorService selects the chart's Pods.
func injectorService() corev1.Service {
	return corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: injectorNS, Name: injectorName},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{InjectorLabel: InjectorLabelValue, "app.kubernetes.io/instance": "rbac-proxy"}},
	}
}

// injectorDeployment is a Deployment labelled and templated like the chart's, running args.
func injectorDeployment(namespace, name string, args ...string) appsv1.Deployment {
	labels := map[string]string{InjectorLabel: InjectorLabelValue, "app.kubernetes.io/instance": "rbac-proxy"}
	return appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: labels},
			Spec: corev1.PodSpec{Containers: []corev1.Container{
				{Name: "injector", Command: []string{"/rbac-proxy-injector"}, Args: append([]string{"serve"}, args...)},
			}},
		}},
	}
}

// TestChooseInjector: the Deployment comes from what only an admin writes (the webhook
// configuration), never from a Deployment a tenant can create labelled like the injector; when
// more than one could be it, none is chosen.
func TestChooseInjector(t *testing.T) {
	chart := injectorDeployment(injectorNS, injectorName, "--proxy-image=r/rbac-proxy:v2")
	// A tenant's Deployment, labelled and run like the injector's, with settings of its choosing.
	forged := injectorDeployment("tenant", "rbac-proxy-injector", "--proxy-image=r/rbac-proxy:v1")
	other := injectorDeployment(injectorNS, "second", "--proxy-image=r/rbac-proxy:v3")
	notServe := injectorDeployment(injectorNS, injectorName)
	notServe.Spec.Template.Spec.Containers[0].Args = []string{"inject", "-f", "-"}
	// Runs serve, but neither the Service selects it nor has it the chart's label.
	unlabelled := injectorDeployment(injectorNS, "renamed")
	unlabelled.Labels, unlabelled.Spec.Template.Labels = nil, map[string]string{"app": "renamed"}
	url := "https://localhost:9443/mutate-pods"
	for _, tc := range []struct {
		name string
		in   InjectorObjects
		// want is the Deployment chosen, NAMESPACE/NAME; empty: none.
		want string
		// reason holds these, in order.
		reason []string
	}{{
		name: "the webhook's Service selects the chart's Deployment",
		in:   InjectorObjects{Configs: []admissionregistrationv1.MutatingWebhookConfiguration{injectorConfig("", true)}, Services: []corev1.Service{injectorService()}, Deployments: []appsv1.Deployment{chart}},
		want: injectorNS + "/" + injectorName,
	}, {
		name: "by the Service, even without the chart's label",
		in:   InjectorObjects{Configs: []admissionregistrationv1.MutatingWebhookConfiguration{injectorConfig("", false)}, Services: []corev1.Service{injectorService()}, Deployments: []appsv1.Deployment{func() appsv1.Deployment { d := chart; d.Labels = nil; return d }()}},
		want: injectorNS + "/" + injectorName,
	}, {
		name: "by the Service, a forged Deployment elsewhere changes nothing",
		in:   InjectorObjects{Configs: []admissionregistrationv1.MutatingWebhookConfiguration{injectorConfig("", true)}, Services: []corev1.Service{injectorService()}, Deployments: []appsv1.Deployment{forged, chart}},
		want: injectorNS + "/" + injectorName,
	}, {
		name:   "the Service selects two Deployments running serve",
		in:     InjectorObjects{Configs: []admissionregistrationv1.MutatingWebhookConfiguration{injectorConfig("", true)}, Services: []corev1.Service{injectorService()}, Deployments: []appsv1.Deployment{chart, other}},
		reason: []string{"select several Deployments", injectorNS + "/" + injectorName + ", " + injectorNS + "/second", "--injector=NAMESPACE/NAME"},
	}, {
		name:   "a URL, the release's namespace by Helm's annotation: the labelled Deployment there",
		in:     InjectorObjects{Configs: []admissionregistrationv1.MutatingWebhookConfiguration{injectorConfig(url, true)}, Deployments: []appsv1.Deployment{chart}},
		want:   injectorNS + "/" + injectorName,
		reason: []string{"the injector's webhooks call a URL", "found by its label app.kubernetes.io/name=rbac-proxy-injector in namespace rbac-proxy"},
	}, {
		name:   "a URL: a forged Deployment in a tenant's namespace is not chosen",
		in:     InjectorObjects{Configs: []admissionregistrationv1.MutatingWebhookConfiguration{injectorConfig(url, true)}, Deployments: []appsv1.Deployment{forged, chart}},
		want:   injectorNS + "/" + injectorName,
		reason: []string{"found by its label"},
	}, {
		name:   "a URL: the forged Deployment alone is refused, and named",
		in:     InjectorObjects{Configs: []admissionregistrationv1.MutatingWebhookConfiguration{injectorConfig(url, true)}, Deployments: []appsv1.Deployment{forged}},
		reason: []string{"no Deployment labelled app.kubernetes.io/name=rbac-proxy-injector runs serve in namespace rbac-proxy", "not trusted", "tenant/rbac-proxy-injector"},
	}, {
		name:   "a URL and no annotation: no namespace to trust, whatever is labelled",
		in:     InjectorObjects{Configs: []admissionregistrationv1.MutatingWebhookConfiguration{injectorConfig(url, false)}, Deployments: []appsv1.Deployment{chart}},
		reason: []string{"call a URL", "names no namespace"},
	}, {
		name:   "two labelled injector Deployments in the release's namespace",
		in:     InjectorObjects{Configs: []admissionregistrationv1.MutatingWebhookConfiguration{injectorConfig(url, true)}, Deployments: []appsv1.Deployment{chart, other}},
		reason: []string{"several Deployments labelled", injectorNS + "/" + injectorName + ", " + injectorNS + "/second"},
	}, {
		name:   "the Service selects nothing running serve, the labelled one is not serve either",
		in:     InjectorObjects{Configs: []admissionregistrationv1.MutatingWebhookConfiguration{injectorConfig("", true)}, Services: []corev1.Service{injectorService()}, Deployments: []appsv1.Deployment{notServe, unlabelled}},
		reason: []string{"Service rbac-proxy/rbac-proxy-rbac-proxy-injector selects no Deployment running serve", "no Deployment labelled"},
	}, {
		name:   "the Service is gone: the labelled Deployment of its namespace",
		in:     InjectorObjects{Configs: []admissionregistrationv1.MutatingWebhookConfiguration{injectorConfig("", false)}, Deployments: []appsv1.Deployment{chart}},
		want:   injectorNS + "/" + injectorName,
		reason: []string{"Service rbac-proxy/rbac-proxy-rbac-proxy-injector not found", "found by its label"},
	}, {
		name:   "the Service may not be read",
		in:     InjectorObjects{Configs: []admissionregistrationv1.MutatingWebhookConfiguration{injectorConfig("", false)}, Refused: []string{"may not get service rbac-proxy/rbac-proxy-rbac-proxy-injector", "may not list deployments in namespace rbac-proxy"}},
		reason: []string{"may not get service rbac-proxy/rbac-proxy-rbac-proxy-injector; no Deployment", "; may not list deployments in namespace rbac-proxy"},
	}, {
		name:   "no webhook configuration of the injector",
		in:     InjectorObjects{Configs: chartWebhooks()[:1], Deployments: []appsv1.Deployment{chart}},
		reason: []string{"no MutatingWebhookConfiguration has a webhook *.inject.rbac-proxy.io"},
	}, {
		name:   "webhook configurations may not be read (a namespace viewer)",
		in:     InjectorObjects{ConfigsRefused: "may not list mutatingwebhookconfigurations", Deployments: []appsv1.Deployment{chart}},
		reason: []string{"may not list mutatingwebhookconfigurations", "--injector=NAMESPACE/NAME or the injector's settings flags"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			d, reason := ChooseInjector(tc.in)
			got := ""
			if d != nil {
				got = d.Namespace + "/" + d.Name
			}
			if got != tc.want {
				t.Errorf("chose %q (%s), want %q", got, reason, tc.want)
			}
			rest := reason
			for _, r := range tc.reason {
				i := strings.Index(rest, r)
				if i < 0 {
					t.Errorf("reason %q lacks %q (in this order: %q)", reason, r, tc.reason)
					break
				}
				rest = rest[i+len(r):]
			}
			if len(tc.reason) == 0 && reason != "" {
				t.Errorf("reason %q, want none: the Service led to it", reason)
			}
		})
	}
}

// TestReadInjector: the reads are those of the namespaces the configuration names, refusals are
// recorded (ChooseInjector says them), a cluster that may not list webhook configurations gives
// nothing to trust.
func TestReadInjector(t *testing.T) {
	config := injectorConfig("", true)
	svc := injectorService()
	chart := injectorDeployment(injectorNS, injectorName)
	forged := injectorDeployment("tenant", "rbac-proxy-injector")
	objs := []client.Object{&config, &svc, &chart, &forged}

	in, err := ReadInjector(context.Background(), refusing(t, func(any, string) error { return nil }, objs...))
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Services) != 1 || len(in.Deployments) != 1 || in.Deployments[0].Namespace != injectorNS || len(in.Refused) > 0 {
		t.Errorf("read services %d, deployments %+v, refused %q; want the chart's Service and Deployment alone", len(in.Services), in.Deployments, in.Refused)
	}
	if d, _ := ChooseInjector(in); d == nil || d.Name != injectorName {
		t.Errorf("chose %v, want the chart's Deployment", d)
	}

	in, err = ReadInjector(context.Background(), refusing(t, func(obj any, _ string) error {
		switch obj.(type) {
		case *corev1.Service:
			return forbidden("services")
		case *appsv1.DeploymentList:
			return forbidden("deployments")
		}
		return nil
	}, objs...))
	if err != nil {
		t.Fatal(err)
	}
	if want := "may not get service rbac-proxy/rbac-proxy-rbac-proxy-injector, may not list deployments in namespace rbac-proxy"; strings.Join(in.Refused, ", ") != want {
		t.Errorf("refused %q, want %q", in.Refused, want)
	}

	in, err = ReadInjector(context.Background(), refusing(t, func(obj any, _ string) error {
		if _, ok := obj.(*admissionregistrationv1.MutatingWebhookConfigurationList); ok {
			return forbidden("mutatingwebhookconfigurations")
		}
		return nil
	}, objs...))
	if err != nil || in.ConfigsRefused == "" || len(in.Deployments) > 0 {
		t.Errorf("without webhook configurations: %+v, %v; want the refusal and nothing read", in, err)
	}
}
