package config

import (
	"sort"
	"strings"
	"text/template"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// resourceAttributeFields are the resource attributes by their config-file
// names; the --resource-attributes key of each is its name in lower case.
var resourceAttributeFields = []struct {
	name string
	at   func(*ResourceAttributes) *string
}{
	{"namespace", func(r *ResourceAttributes) *string { return &r.Namespace }},
	{"apiGroup", func(r *ResourceAttributes) *string { return &r.APIGroup }},
	{"apiVersion", func(r *ResourceAttributes) *string { return &r.APIVersion }},
	{"resource", func(r *ResourceAttributes) *string { return &r.Resource }},
	{"subresource", func(r *ResourceAttributes) *string { return &r.Subresource }},
	{"name", func(r *ResourceAttributes) *string { return &r.Name }},
}

// resourceAttributeKey is the --resource-attributes key of the field at i.
func resourceAttributeKey(i int) string { return strings.ToLower(resourceAttributeFields[i].name) }

// ParseResourceAttributes parses the --resource-attributes value
// "namespace=gpu,resource=services,...". Keys are case-insensitive.
func ParseResourceAttributes(v string) (*ResourceAttributes, error) {
	keys := make([]string, len(resourceAttributeFields))
	for i := range resourceAttributeFields {
		keys[i] = resourceAttributeKey(i)
	}
	sort.Strings(keys)
	allowed := strings.Join(keys, ", ")

	fld := flag("--resource-attributes")
	ra := &ResourceAttributes{}
	seen := map[string]bool{}
	for _, pair := range strings.Split(v, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		k, val, ok := strings.Cut(pair, "=")
		if !ok {
			return nil, field.Invalid(fld, pair, "each item is key=value with key one of "+allowed)
		}
		key := strings.ToLower(strings.TrimSpace(k))
		at := -1
		for i := range resourceAttributeFields {
			if resourceAttributeKey(i) == key {
				at = i
			}
		}
		if at < 0 {
			return nil, field.Invalid(fld, k, "unknown key; allowed keys are "+allowed)
		}
		if seen[key] {
			return nil, field.Invalid(fld, k, "key given twice")
		}
		seen[key] = true
		*resourceAttributeFields[at].at(ra) = strings.TrimSpace(val)
	}
	if len(seen) == 0 {
		return nil, field.Invalid(fld, v, "needs at least one key=value with key one of "+allowed)
	}
	return ra, nil
}

// TemplateData is what a resource attribute's template is applied to.
type TemplateData struct{ Value string }

// ParseValueTemplate parses one resource attribute (name is its config-file
// key, such as namespace): nil for a literal, else its {{ .Value }}
// template, refused unless .Value is all it reads.
func ParseValueTemplate(name, s string) (*template.Template, error) {
	t, err := parseValueTemplate(name, s)
	if err != nil {
		return nil, err
	}
	return t, nil
}

func parseValueTemplate(name, s string) (*template.Template, *field.Error) {
	if !strings.Contains(s, "{{") {
		return nil, nil
	}
	t, err := template.New(name).Option("missingkey=error").Parse(s)
	if err != nil {
		return nil, field.Invalid(fileAuthz.Child("resourceAttributes", name), s, "not a valid template: "+err.Error())
	}
	if err := t.Execute(&strings.Builder{}, TemplateData{Value: "x"}); err != nil {
		return nil, field.Invalid(fileAuthz.Child("resourceAttributes", name), s, "the only template value is {{ .Value }}: "+err.Error())
	}
	return t, nil
}

func (ra ResourceAttributes) validate() field.ErrorList {
	var errs field.ErrorList
	for _, f := range resourceAttributeFields {
		if _, err := parseValueTemplate(f.name, *f.at(&ra)); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}
