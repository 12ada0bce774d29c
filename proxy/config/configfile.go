package config

import (
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

// ConfigFile is the schema of --config-file, kube-rbac-proxy's format.
type ConfigFile struct {
	Authorization *FileAuthorization `json:"authorization,omitempty"`
}

// FileAuthorization is the "authorization" section of the config file.
type FileAuthorization struct {
	Rewrites           *Rewrites           `json:"rewrites,omitempty"`
	ResourceAttributes *ResourceAttributes `json:"resourceAttributes,omitempty"`
	Static             []StaticRule        `json:"static,omitempty"`
	// Tenancy is rbac-proxy's own; kube-rbac-proxy has no such section.
	Tenancy *FileTenancy `json:"tenancy,omitempty"`
}

// Rewrites take the value of a query parameter and/or a header of the request
// and substitute it for {{ .Value }} in the resource attributes. One review is
// made per value; all must allow. A request without any value is refused.
type Rewrites struct {
	ByQueryParameter *RewriteSource `json:"byQueryParameter,omitempty"`
	ByHTTPHeader     *RewriteSource `json:"byHttpHeader,omitempty"`
}

// RewriteSource names the query parameter or header a rewrite reads.
type RewriteSource struct {
	Name string `json:"name,omitempty"`
}

// ResourceAttributes are the SubjectAccessReview resource attributes; each
// may use the {{ .Value }} template when rewrites are configured.
type ResourceAttributes struct {
	Namespace   string `json:"namespace,omitempty"`
	APIGroup    string `json:"apiGroup,omitempty"`
	APIVersion  string `json:"apiVersion,omitempty"`
	Resource    string `json:"resource,omitempty"`
	Subresource string `json:"subresource,omitempty"`
	Name        string `json:"name,omitempty"`
}

// StaticRule allows requests whose attributes match every non-empty field.
// A rule is either a resource rule (ResourceRequest true, no Path) or a
// non-resource rule (with a Path).
type StaticRule struct {
	User            StaticUser `json:"user"`
	Verb            string     `json:"verb,omitempty"`
	Namespace       string     `json:"namespace,omitempty"`
	APIGroup        string     `json:"apiGroup,omitempty"`
	Resource        string     `json:"resource,omitempty"`
	Subresource     string     `json:"subresource,omitempty"`
	Name            string     `json:"name,omitempty"`
	ResourceRequest bool       `json:"resourceRequest,omitempty"`
	Path            string     `json:"path,omitempty"`
}

// StaticUser matches the caller: Name (if set) must equal the user name, and
// when Groups is set the caller must belong to at least one of them.
// kube-rbac-proxy v0.19 ignored Groups, which let any user through a rule
// that only listed groups; rbac-proxy does not.
type StaticUser struct {
	Name   string   `json:"name,omitempty"`
	Groups []string `json:"groups,omitempty"`
}

// LoadConfigFile reads and strictly parses a config file: unknown fields are
// an error.
func LoadConfigFile(path string) (*ConfigFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, field.Invalid(flag("--config-file"), path, err.Error())
	}
	return ParseConfigFile(path, b)
}

// ParseConfigFile strictly parses config file content; name is used in errors.
func ParseConfigFile(name string, b []byte) (*ConfigFile, error) {
	var cf ConfigFile
	if err := yaml.UnmarshalStrict(b, &cf); err != nil {
		msg := err.Error()
		// sigs.k8s.io/yaml prefixes its errors with its call chain; keep the cause.
		if i := strings.LastIndex(msg, "json: "); i >= 0 {
			msg = msg[i+len("json: "):]
		}
		return nil, field.Invalid(flag("--config-file"), name, msg+" (allowed: authorization.{rewrites.{byQueryParameter,byHttpHeader}.name, resourceAttributes.{namespace,apiGroup,apiVersion,resource,subresource,name}, static[].{user.{name,groups},verb,namespace,apiGroup,resource,subresource,name,resourceRequest,path}, tenancy.{mode,namespaceLabels,verb,resource}})")
	}
	return &cf, nil
}
