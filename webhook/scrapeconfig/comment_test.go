package scrapeconfig

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"go.yaml.in/yaml/v2"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"dcgm-exporter.gpu.svc": "dcgm-exporter.gpu.svc",
		"/gpu/metrics":          "/gpu/metrics",
		"métriques":             "métriques",
		"a\n---\nkind: X":       `"a\n---\nkind: X"`,
		"a\r# b":                `"a\r# b"`,
		"a\tb":                  `"a\tb"`,
		// Line breaks to YAML 1.1, which Prometheus' parser follows.
		"a\u0085b": `"a\u0085b"`,
		"a\u2028b": `"a\u2028b"`,
		"a\u2029b": `"a\u2029b"`,
		"a\x00b":   `"a\x00b"`,
		"é\nb":     `"\u00e9\nb"`,
	} {
		if got := clean(in); got != want {
			t.Errorf("clean(%q) = %s, want %s", in, got, want)
		}
	}
}

// hostile would, printed raw into a comment, end it and add a document of its own to what
// kubectl applies and to what Prometheus loads.
const hostile = "x\n---\napiVersion: v1\nkind: Secret\n#\u2028---\u2028kind: Secret\r\n---\u0085kind: Secret"

// TestCommentsCarryNoYAML: with a tenant's value in every string a Scrape holds, each output
// is still its one object, the comments before it comment lines only, to kubectl's document
// splitter and to the YAML 1.1 parser Prometheus uses.
func TestCommentsCarryNoYAML(t *testing.T) {
	for _, auth := range Auths() {
		s := &Scrape{
			Namespace: hostile, Workload: exporterWorkload, PodLabels: map[string]string{"app": hostile},
			Port: PodPort{Name: hostile, Number: 9400}, Service: &ServicePort{Service: hostile, Labels: map[string]string{"app": hostile}, Port: hostile},
			Path: hostile, ServerName: hostile, CASecret: hostile, Auth: auth, Audience: hostile, ClientCertSecret: hostile,
			Targets: []Target{{Pod: hostile, IP: "10.0.0.10"}},
		}
		s.Workload.Name = hostile
		for _, o := range []Options{
			{Output: OutputServiceMonitor, PrometheusNamespace: hostile},
			{Output: OutputPodMonitor, PrometheusNamespace: hostile},
			{Output: OutputPrometheus, Targets: TargetsKubernetes},
			{Output: OutputPrometheus, Targets: TargetsStatic},
		} {
			t.Run(string(auth)+"/"+string(o.Output)+"/"+string(o.Targets), func(t *testing.T) {
				var b bytes.Buffer
				if err := s.Write(&b, o); err != nil {
					t.Fatal(err)
				}
				text := b.String()
				head, _, _ := strings.Cut(text, "\n"+dataStart(o.Output))
				for _, line := range strings.Split(head, "\n") {
					if !strings.HasPrefix(line, "#") || strings.ContainsAny(line, "\r\u0085\u2028\u2029") {
						t.Fatalf("line %q of the comments is no comment line:\n%s", line, text)
					}
				}
				r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(text)))
				docs := 0
				for {
					doc, err := r.Read()
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					var v any
					if err := yaml.Unmarshal(doc, &v); err != nil {
						t.Fatalf("%v:\n%s", err, doc)
					}
					if v != nil {
						docs++
					}
				}
				d := yaml.NewDecoder(strings.NewReader(text))
				var v any
				if err := d.Decode(&v); err != nil {
					t.Fatal(err)
				}
				if err := d.Decode(&v); docs != 1 || !errors.Is(err, io.EOF) {
					t.Errorf("%d documents to kubectl, a second to Prometheus' parser: %v:\n%s", docs, err, text)
				}
			})
		}
	}
}

// dataStart is how the printed object's first line starts.
func dataStart(o Output) string {
	if o == OutputPrometheus {
		return "- job_name:"
	}
	return "apiVersion:"
}
