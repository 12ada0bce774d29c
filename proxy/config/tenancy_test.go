package config

import (
	"slices"
	"strings"
	"testing"

	"github.com/rbac-proxy/rbac-proxy/internal/testkit"
)

func TestTenancyValidation(t *testing.T) {
	file := func(body string) string {
		return "--config-file=" + testkit.WriteFile(t, "tenancy.yaml", "authorization:\n  tenancy:\n"+body)
	}
	checkValidation(t, []validationCase{
		{"off by default, flags unchecked", []string{"--tenancy-verb=*"}, ""},
		{"namespace with the defaults", []string{"--tenancy=namespace"}, ""},
		{"namespace under static authorization", []string{"--tenancy=namespace", "--authz=static", "--allowed-users=prometheus"}, ""},
		{"unknown mode", []string{"--tenancy=label"}, `--tenancy: Unsupported value: "label": supported values: "", "namespace"`},
		{"no label", []string{"--tenancy=namespace", `--tenancy-namespace-labels=""`}, `--tenancy-namespace-labels: Invalid value: "": must be a Prometheus label name`},
		{"label with a dash", []string{"--tenancy=namespace", "--tenancy-namespace-labels=k8s-namespace"}, `--tenancy-namespace-labels: Invalid value: "k8s-namespace": must be a Prometheus label name`},
		{"reserved label", []string{"--tenancy=namespace", "--tenancy-namespace-labels=__name__"}, `--tenancy-namespace-labels: Invalid value: "__name__"`},
		{"label twice", []string{"--tenancy=namespace", "--tenancy-namespace-labels=namespace,namespace"}, `--tenancy-namespace-labels: Duplicate value: "namespace"`},
		{"one custom label", []string{"--tenancy=namespace", "--tenancy-namespace-labels=kubernetes_namespace"}, ""},
		{"wildcard verb", []string{"--tenancy=namespace", "--tenancy-verb=*"}, `--tenancy-verb: Invalid value: "*": must be a Kubernetes verb in lower case`},
		{"empty verb", []string{"--tenancy=namespace", "--tenancy-verb="}, `--tenancy-verb: Invalid value: ""`},
		{"custom verb", []string{"--tenancy=namespace", "--tenancy-verb=list"}, ""},
		{"resource with a group", []string{"--tenancy=namespace", "--tenancy-resource=pytorchjobs.kubeflow.org"}, ""},
		{"resource with a subresource", []string{"--tenancy=namespace", "--tenancy-resource=pods/log"}, `--tenancy-resource: Invalid value: "pods/log": must be resource or resource.group`},
		{"group without a resource", []string{"--tenancy=namespace", "--tenancy-resource=.apps"}, `--tenancy-resource: Invalid value: ".apps"`},
		{"empty resource", []string{"--tenancy=namespace", "--tenancy-resource="}, `--tenancy-resource: Invalid value: ""`},
		{"bad group", []string{"--tenancy=namespace", "--tenancy-resource=jobs.Batch_"}, `--tenancy-resource: Invalid value: "jobs.Batch_": must be resource or resource.group, for example pods or jobs.batch: the group`},
		{"the config file", []string{file("    mode: namespace\n    namespaceLabels: [exported_namespace]\n    verb: list\n    resource: jobs.batch\n")}, ""},
		{"the config file's bad label", []string{file("    mode: namespace\n    namespaceLabels: [a-b]\n")}, `--tenancy-namespace-labels: Invalid value: "a-b"`},
		{"the config file and a flag", []string{file("    mode: namespace\n"), "--tenancy-verb=list"}, `--tenancy-verb: Invalid value: "list": cannot be used when the config file sets authorization.tenancy`},
		{"the config file's unknown field", []string{file("    mode: namespace\n    labels: [namespace]\n")}, `unknown field "labels"`},
	})
}

// TestTenancyFlagsEqualConfigFile: the file's authorization.tenancy reads as the flags do, and
// an omitted field keeps the flag's default.
func TestTenancyFlagsEqualConfigFile(t *testing.T) {
	for _, tc := range []struct{ file, flags []string }{
		{[]string{"mode: namespace"}, []string{"--tenancy=namespace"}},
		{[]string{"mode: namespace", "namespaceLabels: [exported_namespace, namespace]", "verb: list", "resource: jobs.batch"},
			[]string{"--tenancy=namespace", "--tenancy-namespace-labels=exported_namespace,namespace", "--tenancy-verb=list", "--tenancy-resource=jobs.batch"}},
	} {
		body := "authorization:\n  tenancy:\n    " + strings.Join(tc.file, "\n    ") + "\n"
		a, err := parseConfig(t, append(slices.Clone(minimalArgs), "--config-file="+testkit.WriteFile(t, "t.yaml", body))...)
		if err != nil {
			t.Fatal(err)
		}
		b, err := parseConfig(t, append(slices.Clone(minimalArgs), tc.flags...)...)
		if err != nil {
			t.Fatal(err)
		}
		if d := Diff(a, b); d != "" {
			t.Errorf("%q: file and flags differ at %s", tc.file, d)
		}
		if a.Authorization.Tenancy.Mode != TenancyNamespace || a.Authorization.Tenancy.Resource == "" {
			t.Errorf("%q: read as %+v", tc.file, a.Authorization.Tenancy)
		}
	}
}
