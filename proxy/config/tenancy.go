package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// TenancyMode says what a caller gets that is not allowed the whole endpoint.
type TenancyMode string

const (
	// TenancyOff refuses such a caller (403), as kube-rbac-proxy does.
	TenancyOff TenancyMode = ""
	// TenancyNamespace serves such a caller the series of the namespaces it
	// may read (Tenancy.Verb Tenancy.Resource there), and nothing else.
	TenancyNamespace TenancyMode = "namespace"
)

// Tenancy is what a caller denied the whole endpoint may still see of a
// metrics exposition.
type Tenancy struct {
	Mode TenancyMode
	// NamespaceLabels are the labels that name a series' namespace: a series
	// is visible when it has one of them and the caller may read every
	// namespace those it has name. A series with none is withheld.
	NamespaceLabels []string
	// Verb, APIGroup and Resource are what a tenant must be allowed in a
	// namespace to see its series: one SubjectAccessReview per namespace,
	// "may Verb Resource.APIGroup in namespace N".
	Verb     string
	APIGroup string
	Resource string
}

// Tenancy defaults: a team that may read its Pods sees their GPUs' series.
// exported_namespace is what Prometheus renames an exporter's namespace
// label to (honor_labels: false) when it scrapes through a federation or
// a second Prometheus.
var DefaultTenancyNamespaceLabels = []string{"namespace", "exported_namespace"}

const (
	DefaultTenancyVerb     = "get"
	DefaultTenancyResource = "pods"
)

// FileTenancy is the config file's authorization.tenancy; an omitted field
// keeps the flag's default.
type FileTenancy struct {
	Mode            string   `json:"mode,omitempty"`
	NamespaceLabels []string `json:"namespaceLabels,omitempty"`
	Verb            string   `json:"verb,omitempty"`
	// Resource is resource or resource.group, as --tenancy-resource.
	Resource string `json:"resource,omitempty"`
}

// tenancyFlags are the flags that set Tenancy, in definition order.
var tenancyFlags = []string{"tenancy", "tenancy-namespace-labels", "tenancy-verb", "tenancy-resource"}

// addTenancyFlags registers the --tenancy* flags.
func (f *Flags) addTenancyFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.Tenancy, "tenancy", string(TenancyOff), "What a caller gets that is not allowed the whole endpoint: \"\" refuses it (403); namespace serves it the series of the exposition whose namespace label names a namespace where it may --tenancy-verb --tenancy-resource (a SubjectAccessReview per namespace, cached), withholds every other series, and refuses it (403) when none is left. Needs the API server, also with --authz=static. Same as the config file's authorization.tenancy.mode.")
	fs.StringSliceVar(&f.TenancyNamespaceLabels, "tenancy-namespace-labels", DefaultTenancyNamespaceLabels, "Comma-separated labels that name a series' namespace for --tenancy: a tenant sees a series that has one of them when it may read every namespace those it has name (a namespace and an exported_namespace that differ need both); a series with none is withheld.")
	fs.StringVar(&f.TenancyVerb, "tenancy-verb", DefaultTenancyVerb, "The verb a tenant must be allowed on --tenancy-resource in a namespace to see its series.")
	fs.StringVar(&f.TenancyResource, "tenancy-resource", DefaultTenancyResource, "The resource a tenant must be allowed --tenancy-verb on in a namespace to see its series: resource or resource.group, as kubectl auth can-i writes it (pods, jobs.batch).")
}

// tenancy is the flags' Tenancy.
func (f *Flags) tenancy() Tenancy {
	gr := schema.ParseGroupResource(f.TenancyResource)
	return Tenancy{
		Mode:            TenancyMode(f.Tenancy),
		NamespaceLabels: f.TenancyNamespaceLabels,
		Verb:            f.TenancyVerb,
		APIGroup:        gr.Group,
		Resource:        gr.Resource,
	}
}

// setTenancy is the inverse of tenancy.
func (f *Flags) setTenancy(t Tenancy) {
	f.Tenancy, f.TenancyNamespaceLabels, f.TenancyVerb = string(t.Mode), t.NamespaceLabels, t.Verb
	f.TenancyResource = schema.GroupResource{Group: t.APIGroup, Resource: t.Resource}.String()
}

// applyFileTenancy puts the config file's authorization.tenancy into t; the
// --tenancy* flags cannot be used with it.
func (f *Flags) applyFileTenancy(ft *FileTenancy, t *Tenancy) field.ErrorList {
	var errs field.ErrorList
	for _, name := range tenancyFlags {
		if f.fs.Changed(name) {
			errs = append(errs, field.Invalid(flag("--"+name), f.fs.Lookup(name).Value.String(), "cannot be used when the config file sets authorization.tenancy"))
		}
	}
	t.Mode = TenancyMode(ft.Mode)
	if ft.NamespaceLabels != nil {
		t.NamespaceLabels = ft.NamespaceLabels
	}
	if ft.Verb != "" {
		t.Verb = ft.Verb
	}
	if ft.Resource != "" {
		gr := schema.ParseGroupResource(ft.Resource)
		t.APIGroup, t.Resource = gr.Group, gr.Resource
	}
	return errs
}

// verbSyntax is a Kubernetes verb: get, list, watch, a custom one in lower
// case; never the wildcard, which would ask for everything.
var verbSyntax = regexp.MustCompile(`^[a-z]+$`)

// validate checks t; nothing is checked while tenancy is off, so that a
// hand-built Config needs no tenancy fields.
func (t Tenancy) validate() field.ErrorList {
	var errs field.ErrorList
	switch t.Mode {
	case TenancyOff:
		return nil
	case TenancyNamespace:
	default:
		return field.ErrorList{field.NotSupported(flag("--tenancy"), t.Mode, []TenancyMode{TenancyOff, TenancyNamespace})}
	}
	labels := flag("--tenancy-namespace-labels")
	if len(t.NamespaceLabels) == 0 {
		errs = append(errs, field.Required(labels, "at least one label name, for example namespace,exported_namespace"))
	}
	for i, l := range t.NamespaceLabels {
		switch {
		case !model.LegacyValidation.IsValidLabelName(l) || strings.HasPrefix(l, "__"):
			errs = append(errs, field.Invalid(labels, l, "must be a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __), for example namespace"))
		case slices.Contains(t.NamespaceLabels[:i], l):
			errs = append(errs, field.Duplicate(labels, l))
		}
	}
	if !verbSyntax.MatchString(t.Verb) {
		errs = append(errs, field.Invalid(flag("--tenancy-verb"), t.Verb, "must be a Kubernetes verb in lower case, for example get or list"))
	}
	resource := schema.GroupResource{Group: t.APIGroup, Resource: t.Resource}.String()
	if msgs := validation.IsDNS1035Label(t.Resource); len(msgs) > 0 {
		errs = append(errs, field.Invalid(flag("--tenancy-resource"), resource, fmt.Sprintf("must be resource or resource.group, for example pods or jobs.batch: the resource %s", strings.Join(msgs, "; "))))
	} else if t.APIGroup != "" {
		if msgs := validation.IsDNS1123Subdomain(t.APIGroup); len(msgs) > 0 {
			errs = append(errs, field.Invalid(flag("--tenancy-resource"), resource, fmt.Sprintf("must be resource or resource.group, for example pods or jobs.batch: the group %s", strings.Join(msgs, "; "))))
		}
	}
	return errs
}
