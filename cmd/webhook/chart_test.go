package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"

	"github.com/rbac-proxy/rbac-proxy/internal/golden"
	"github.com/rbac-proxy/rbac-proxy/webhook"
)

const (
	chartDir     = "../../charts/rbac-proxy-injector"
	schemaFile   = chartDir + "/values.schema.json"
	settingsTpl  = chartDir + "/templates/_settings.tpl"
	valuesFile   = chartDir + "/values.yaml"
	schemaNotice = "The entries of the webhook's settings (docs/helm.md) are generated from webhook.Config by `go test ./cmd/webhook -update`; the rest is written here."
)

// chartSettings are the settings that are a chart value.
func chartSettings() []setting {
	return slices.DeleteFunc(settings(), func(s setting) bool { return s.chart == "" })
}

// schemaOf is the JSON schema of the setting s.
func schemaOf(s setting) map[string]any {
	item := map[string]any{}
	kind := s.typ.Kind()
	if kind == reflect.Slice {
		kind = s.typ.Elem().Kind()
	}
	switch kind {
	case reflect.String:
		item["type"] = "string"
	case reflect.Int, reflect.Int32:
		item["type"] = "integer"
	default:
		panic(fmt.Sprintf("%s: no schema for a %s", s.key, s.typ))
	}
	if s.enum != nil {
		item["enum"] = s.enum
	}
	if s.min != nil {
		item["minimum"] = *s.min
	}
	if s.max != nil {
		item["maximum"] = *s.max
	}
	if s.format != "" {
		item["pattern"] = formats[s.format].pattern
	}
	out := item
	if s.typ.Kind() == reflect.Slice {
		out = map[string]any{"type": "array", "items": item}
	}
	out["description"] = s.help + " (--" + s.flag + ")"
	return out
}

// generateSchema puts the settings' entries into the chart's schema, at their values' paths.
func generateSchema(t *testing.T) []byte {
	raw, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatalf("%s: %v", schemaFile, err)
	}
	schema["$comment"] = schemaNotice
	for _, s := range chartSettings() {
		node := schema
		parts := strings.Split(s.chart, ".")
		for _, p := range parts[:len(parts)-1] {
			props, _ := node["properties"].(map[string]any)
			if props == nil {
				t.Fatalf("%s: %s lies below a value that is not an object", schemaFile, s.chart)
			}
			next, _ := props[p].(map[string]any)
			if next == nil {
				next = map[string]any{"type": "object", "additionalProperties": false, "properties": map[string]any{}}
				props[p] = next
			}
			node = next
		}
		props, _ := node["properties"].(map[string]any)
		if props == nil {
			t.Fatalf("%s: %s lies below a value that is not an object", schemaFile, s.chart)
		}
		props[parts[len(parts)-1]] = schemaOf(s)
	}
	var b bytes.Buffer
	writeJSON(&b, schema, "")
	b.WriteString("\n")
	return b.Bytes()
}

// writeJSON writes v with sorted keys, on one line where that fits in 100 columns.
func writeJSON(b *bytes.Buffer, v any, indent string) {
	var line bytes.Buffer
	writeJSONLine(&line, v)
	m, isMap := v.(map[string]any)
	if len(indent)+line.Len() <= 100 || !isMap {
		b.Write(line.Bytes())
		return
	}
	b.WriteString("{\n")
	for i, k := range sortedKeys(m) {
		if i > 0 {
			b.WriteString(",\n")
		}
		b.WriteString(indent + "  ")
		writeScalar(b, k)
		b.WriteString(": ")
		writeJSON(b, m[k], indent+"  ")
	}
	b.WriteString("\n" + indent + "}")
}

func writeJSONLine(b *bytes.Buffer, v any) {
	switch v := v.(type) {
	case map[string]any:
		b.WriteString("{")
		for i, k := range sortedKeys(v) {
			if i > 0 {
				b.WriteString(", ")
			}
			writeScalar(b, k)
			b.WriteString(": ")
			writeJSONLine(b, v[k])
		}
		b.WriteString("}")
	case []any:
		b.WriteString("[")
		for i, e := range v {
			if i > 0 {
				b.WriteString(", ")
			}
			writeJSONLine(b, e)
		}
		b.WriteString("]")
	case []string:
		writeJSONLine(b, toAny(v))
	default:
		writeScalar(b, v)
	}
}

func writeScalar(b *bytes.Buffer, v any) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err)
	}
	b.Truncate(b.Len() - 1) // Encode ends with a newline
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// TestChartSchema: values.schema.json's entries of the settings are generated from
// webhook.Config.
func TestChartSchema(t *testing.T) {
	golden.Check(t, schemaFile, generateSchema(t))
}

// generateSettingsTemplate is the chart's helper that passes the settings that are a chart value
// as their flags.
func generateSettingsTemplate() []byte {
	var b bytes.Buffer
	b.WriteString(`{{/* settingArgs: the webhook's flags of its settings that are a chart value (docs/helm.md),
generated from webhook.Config by ` + "`go test ./cmd/webhook -update`" + `; serveArgs in _helpers.tpl adds the
others. */}}
{{- define "rbac-proxy-injector.settingArgs" -}}
`)
	for _, s := range chartSettings() {
		if s.typ.Kind() == reflect.Slice {
			fmt.Fprintf(&b, "{{- range .Values.%s }}\n- {{ print \"--%s=\" . | quote }}\n{{- end }}\n", s.chart, s.flag)
			continue
		}
		fmt.Fprintf(&b, "- {{ print \"--%s=\" .Values.%s | quote }}\n", s.flag, s.chart)
	}
	b.WriteString("{{- end -}}\n")
	return b.Bytes()
}

// TestChartSettingsTemplate: the chart passes every setting that is a chart value as its flag.
func TestChartSettingsTemplate(t *testing.T) {
	golden.Check(t, settingsTpl, generateSettingsTemplate())
}

// lookup is the value at the dotted path of a decoded YAML document.
func lookup(doc map[string]any, path string) (any, bool) {
	var v any = doc
	for _, p := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[p]; !ok {
			return nil, false
		}
	}
	return v, true
}

// asJSON is v as JSON decodes it, so that a Go value compares with a decoded YAML one.
func asJSON(t *testing.T, v any) any {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestChartValuesDefaults: values.yaml's default of each setting is webhook.DefaultConfig's.
func TestChartValuesDefaults(t *testing.T) {
	raw, err := os.ReadFile(valuesFile)
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(raw, &values); err != nil {
		t.Fatal(err)
	}
	defaults := webhook.DefaultConfig("")
	for _, s := range chartSettings() {
		got, ok := lookup(values, s.chart)
		if !ok {
			t.Errorf("%s has no %s (the setting %s)", valuesFile, s.chart, s.key)
			continue
		}
		if want := asJSON(t, emptyList(s.field(&defaults).Interface())); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %s is %#v, the webhook's default %s is %#v", valuesFile, s.chart, got, s.key, want)
		}
	}
}

// nest turns dotted paths into nested objects.
func nest(flat map[string]any) map[string]any {
	out := map[string]any{}
	for path, v := range flat {
		m := out
		parts := strings.Split(path, ".")
		for _, p := range parts[:len(parts)-1] {
			if m[p] == nil {
				m[p] = map[string]any{}
			}
			m = m[p].(map[string]any)
		}
		m[parts[len(parts)-1]] = v
	}
	return out
}

// helmBinary is the helm that make tools builds: in $KUBEBUILDER_ASSETS, else in bin/.
func helmBinary(t *testing.T) string {
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		dir = "../../bin"
	}
	p, err := filepath.Abs(filepath.Join(dir, "helm"))
	if err == nil {
		_, err = os.Stat(p)
	}
	if err != nil {
		t.Skipf("no helm (make tools builds bin/helm): %v", err)
	}
	return p
}

// renderedSettings renders the chart with the values file values (none when nil), parses the
// webhook container's args with the serve flags (deploymentSettings) and returns the settings
// they give.
func renderedSettings(t *testing.T, values map[string]any) webhook.Config {
	t.Helper()
	home := t.TempDir()
	args := []string{"template", "rbac-proxy", chartDir, "--namespace", "rbac-proxy"}
	if values != nil {
		raw, err := yaml.Marshal(values)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(home, "values.yaml")
		if err := os.WriteFile(path, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--values", path)
	}
	cmd := exec.CommandContext(t.Context(), helmBinary(t), args...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm %v: %v\n%s", args, err, stderr.String())
	}
	for _, doc := range strings.Split(string(out), "\n---\n") {
		var d appsv1.Deployment
		if err := yaml.Unmarshal([]byte(doc), &d); err != nil || d.Kind != "Deployment" {
			continue
		}
		// As check and scrape-config read the injector's Deployment.
		cfg, err := deploymentSettings(&d)
		if err != nil {
			t.Fatalf("the chart's Deployment: %v", err)
		}
		return *cfg
	}
	t.Fatal("the chart renders no Deployment")
	return webhook.Config{}
}

// chartSamples are a value other than the default for every setting that is a chart value, by
// config-file key.
var chartSamples = map[string]any{
	"proxyImagePullPolicy":     "Always",
	"proxyPort":                9443,
	"proxyEndpointsPort":       9444,
	"sidecarMode":              "container",
	"resources.cpuRequest":     "50m",
	"resources.memoryRequest":  "64Mi",
	"resources.cpuLimit":       "1",
	"resources.memoryLimit":    "256Mi",
	"proxyVerbosity":           4,
	"clusterDomain":            "corp.internal",
	"allowedIssuers":           []string{"Issuer/*", "ClusterIssuer/team-ca"},
	"allowedDNSSuffixes":       []string{"gpu.corp.example"},
	"defaultTokenVerification": "local",
}

// TestChartArgs: the chart's args parse back, with the webhook's own flags, to its defaults and
// the settings the chart builds; each setting's chart value reaches its flag.
func TestChartArgs(t *testing.T) {
	chart, err := os.ReadFile(chartDir + "/Chart.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(chart, &meta); err != nil {
		t.Fatal(err)
	}
	// What the chart builds from its own values (chartFrom), with the default values.
	want := webhook.DefaultConfig("rbac-proxy:" + meta.AppVersion)
	want.DefaultIssuer = "ClusterIssuer/rbac-proxy-rbac-proxy-injector-ca"
	want.ScrapersCASecret = "rbac-proxy/rbac-proxy-rbac-proxy-injector-scrapers-ca"
	if diff := cmp.Diff(want, renderedSettings(t, nil)); diff != "" {
		t.Errorf("the default chart's settings (-want +got):\n%s", diff)
	}

	keys, values := map[string]any{}, map[string]any{}
	for _, s := range chartSettings() {
		v, ok := chartSamples[s.key]
		if !ok {
			t.Fatalf("chartSamples has no value for %s", s.key)
		}
		if reflect.DeepEqual(asJSON(t, v), asJSON(t, emptyList(s.field(&want).Interface()))) {
			t.Fatalf("chartSamples[%s] is the default, which shows nothing", s.key)
		}
		keys[s.key], values[s.chart] = v, v
	}
	raw, err := json.Marshal(nest(keys))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, renderedSettings(t, nest(values))); diff != "" {
		t.Errorf("the settings of the chart with %v (-want +got):\n%s", values, diff)
	}
}
