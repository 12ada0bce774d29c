package webhook

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	evanjsonpatch "github.com/evanphx/json-patch/v5"
	"gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// Injector runs the webhook's decision, policy and render offline over manifests (inject -f).
// It creates nothing: the webhook ensures the Certificate when the injected Pods are admitted.
type Injector struct {
	Defaults *inject.Defaults
}

// Inject reads multi-document YAML and writes it back with the proxy injected into every Pod and
// Pod template of a Deployment, StatefulSet, DaemonSet, Job or CronJob (also inside a List). Other
// documents, opted-out and already-injected ones are written unchanged, byte for byte. On any
// error nothing is written, and the error names every failing document.
func (i *Injector) Inject(r io.Reader, w io.Writer) error {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(r))
	var docs [][]byte
	var errs []error
	for n := 1; ; n++ {
		doc, err := reader.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("document %d: %w", n, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			n--
			continue
		}
		out, name, err := i.injectDocument(doc)
		if err != nil {
			errs = append(errs, fmt.Errorf("document %d%s: %w", n, name, err))
			continue
		}
		docs = append(docs, out)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for n, doc := range docs {
		if n > 0 {
			if _, err := io.WriteString(w, "---\n"); err != nil {
				return err
			}
		}
		if !bytes.HasSuffix(doc, []byte("\n")) {
			doc = append(doc, '\n')
		}
		if _, err := w.Write(doc); err != nil {
			return err
		}
	}
	return nil
}

type objectHeader struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name         string `json:"name"`
		GenerateName string `json:"generateName"`
		Namespace    string `json:"namespace"`
	} `json:"metadata"`
}

func (h objectHeader) describe() string {
	if h.Kind == "" {
		return ""
	}
	name := h.Metadata.Name
	if name == "" {
		name = h.Metadata.GenerateName
	}
	if h.Metadata.Namespace != "" {
		name = h.Metadata.Namespace + "/" + name
	}
	return fmt.Sprintf(" (%s %s)", h.Kind, name)
}

// injectDocument returns the document, injected or as it was, and a description for errors.
func (i *Injector) injectDocument(doc []byte) ([]byte, string, error) {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil, "", err
	}
	if s := strings.TrimSpace(string(js)); s == "null" || !strings.HasPrefix(s, "{") {
		return doc, "", nil
	}
	var h objectHeader
	if err := json.Unmarshal(js, &h); err != nil {
		return nil, "", err
	}
	out, changed, err := i.injectObject(js, h)
	if err != nil || !changed {
		return doc, h.describe(), err
	}
	y, err := yaml.JSONToYAML(out)
	return y, h.describe(), err
}

// templated is the part of a workload that holds its Pod template.
type templated struct {
	Spec struct {
		Template    *corev1.PodTemplateSpec `json:"template"`
		JobTemplate *struct {
			Spec struct {
				Template *corev1.PodTemplateSpec `json:"template"`
			} `json:"spec"`
		} `json:"jobTemplate"`
	} `json:"spec"`
}

// injectObject injects one object (JSON) and reports whether it changed.
func (i *Injector) injectObject(js []byte, h objectHeader) ([]byte, bool, error) {
	workload := inject.Workload{APIVersion: h.APIVersion, Kind: h.Kind, Name: h.Metadata.Name}
	if workload.Name == "" {
		workload.Name = strings.TrimRight(h.Metadata.GenerateName, "-.")
	}
	ns := h.Metadata.Namespace
	switch h.APIVersion + " " + h.Kind {
	case "v1 List":
		return i.injectList(js)
	case "v1 Pod":
		pod := &corev1.Pod{}
		if err := json.Unmarshal(js, pod); err != nil {
			return nil, false, err
		}
		return i.injectTemplate(js, "", &corev1.PodTemplateSpec{ObjectMeta: pod.ObjectMeta, Spec: pod.Spec}, ns, inject.PodWorkload(pod))
	case "apps/v1 Deployment", "apps/v1 StatefulSet", "apps/v1 DaemonSet", "batch/v1 Job":
		var t templated
		if err := json.Unmarshal(js, &t); err != nil {
			return nil, false, err
		}
		if t.Spec.Template == nil {
			return nil, false, errors.New("no spec.template")
		}
		return i.injectTemplate(js, "/spec/template", t.Spec.Template, ns, workload)
	case "batch/v1 CronJob":
		var t templated
		if err := json.Unmarshal(js, &t); err != nil {
			return nil, false, err
		}
		if t.Spec.JobTemplate == nil || t.Spec.JobTemplate.Spec.Template == nil {
			return nil, false, errors.New("no spec.jobTemplate.spec.template")
		}
		return i.injectTemplate(js, "/spec/jobTemplate/spec/template", t.Spec.JobTemplate.Spec.Template, ns, workload)
	}
	return js, false, nil
}

func (i *Injector) injectList(js []byte) ([]byte, bool, error) {
	var list struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(js, &list); err != nil {
		return nil, false, err
	}
	var ops []map[string]any
	var errs []error
	for n, item := range list.Items {
		var h objectHeader
		if err := json.Unmarshal(item, &h); err != nil {
			errs = append(errs, fmt.Errorf("item %d: %w", n, err))
			continue
		}
		out, changed, err := i.injectObject(item, h)
		if err != nil {
			errs = append(errs, fmt.Errorf("item %d%s: %w", n, h.describe(), err))
			continue
		}
		if changed {
			ops = append(ops, map[string]any{"op": "replace", "path": fmt.Sprintf("/items/%d", n), "value": json.RawMessage(out)})
		}
	}
	if len(errs) > 0 {
		return nil, false, errors.Join(errs...)
	}
	if len(ops) == 0 {
		return js, false, nil
	}
	out, err := applyOps(js, ops)
	return out, err == nil, err
}

// injectTemplate renders the template as a Pod and applies the difference, as a JSON patch under
// prefix, to the original JSON: fields the typed structs do not know survive. The difference is
// jsonpatch's field by field (as admission.PatchResponseFromRaw's), not the handler's typed
// patch, which replaces an edited container whole and so would drop such fields from it.
func (i *Injector) injectTemplate(js []byte, prefix string, tmpl *corev1.PodTemplateSpec, namespace string, w inject.Workload) ([]byte, bool, error) {
	pod := &corev1.Pod{ObjectMeta: tmpl.ObjectMeta, Spec: tmpl.Spec}
	decision, err := Decide(pod, map[string]string{inject.LabelInject: inject.NamespaceInjectEnabled})
	if err != nil {
		return nil, false, err
	}
	if decision.Verdict != VerdictInject {
		return js, false, nil
	}
	policy, err := PolicyFor(pod, inject.PolicyInput{Defaults: i.Defaults, Namespace: namespace, Workload: w})
	if err != nil {
		return nil, false, err
	}
	type view struct {
		Metadata metav1.ObjectMeta `json:"metadata"`
		Spec     corev1.PodSpec    `json:"spec"`
	}
	before, err := json.Marshal(view{pod.ObjectMeta, pod.Spec})
	if err != nil {
		return nil, false, err
	}
	inject.Render(pod, policy)
	after, err := json.Marshal(view{pod.ObjectMeta, pod.Spec})
	if err != nil {
		return nil, false, err
	}
	patch, err := jsonpatch.CreatePatch(before, after)
	if err != nil {
		return nil, false, err
	}
	ops := make([]map[string]any, len(patch))
	for n, op := range patch {
		m := map[string]any{"op": op.Operation, "path": prefix + op.Path}
		if op.Operation != "remove" {
			m["value"] = op.Value
		}
		ops[n] = m
	}
	out, err := applyOps(js, ops)
	return out, err == nil, err
}

func applyOps(doc []byte, ops []map[string]any) ([]byte, error) {
	raw, err := json.Marshal(ops)
	if err != nil {
		return nil, err
	}
	patch, err := evanjsonpatch.DecodePatch(raw)
	if err != nil {
		return nil, err
	}
	opts := evanjsonpatch.NewApplyOptions()
	opts.EnsurePathExistsOnAdd = true
	return patch.ApplyWithOptions(doc, opts)
}
