package config

import (
	"sort"
	"strings"
	"text/template"
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

	ra := &ResourceAttributes{}
	seen := map[string]bool{}
	for _, pair := range strings.Split(v, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		k, val, ok := strings.Cut(pair, "=")
		if !ok {
			return nil, fieldErr("--resource-attributes", pair, "each item is key=value with key one of %s", allowed)
		}
		key := strings.ToLower(strings.TrimSpace(k))
		field := -1
		for i := range resourceAttributeFields {
			if resourceAttributeKey(i) == key {
				field = i
			}
		}
		if field < 0 {
			return nil, fieldErr("--resource-attributes", k, "unknown key; allowed keys are %s", allowed)
		}
		if seen[key] {
			return nil, fieldErr("--resource-attributes", k, "key given twice")
		}
		seen[key] = true
		*resourceAttributeFields[field].at(ra) = strings.TrimSpace(val)
	}
	if len(seen) == 0 {
		return nil, fieldErr("--resource-attributes", v, "needs at least one key=value with key one of %s", allowed)
	}
	return ra, nil
}

// TemplateData is what a resource attribute's template is applied to.
type TemplateData struct{ Value string }

// ParseValueTemplate parses one resource attribute (field is its config-file
// name, such as namespace): nil for a literal, else its {{ .Value }}
// template, refused unless .Value is all it reads.
func ParseValueTemplate(field, s string) (*template.Template, error) {
	if !strings.Contains(s, "{{") {
		return nil, nil
	}
	t, err := template.New(field).Option("missingkey=error").Parse(s)
	if err != nil {
		return nil, fieldErr("authorization.resourceAttributes."+field, s, "not a valid template: %v", err)
	}
	if err := t.Execute(&strings.Builder{}, TemplateData{Value: "x"}); err != nil {
		return nil, fieldErr("authorization.resourceAttributes."+field, s, "the only template value is {{ .Value }}: %v", err)
	}
	return t, nil
}

func (ra ResourceAttributes) validate() error {
	for _, f := range resourceAttributeFields {
		if _, err := ParseValueTemplate(f.name, *f.at(&ra)); err != nil {
			return err
		}
	}
	return nil
}
