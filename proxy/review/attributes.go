package review

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"text/template"
	"unicode"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
)

// verbFor maps an HTTP method to a Kubernetes verb as kube-rbac-proxy does.
func verbFor(method string) string {
	switch method {
	case http.MethodGet:
		return "get"
	case http.MethodPost:
		return "create"
	case http.MethodPut:
		return "update"
	case http.MethodPatch:
		return "patch"
	case http.MethodDelete:
		return "delete"
	}
	return "*"
}

// valueTemplate is one resource attribute: a literal, or a {{ .Value }}
// template applied with a rewrite value.
type valueTemplate struct {
	literal string
	tmpl    *template.Template // nil for a literal
}

func compileValue(field, s string) (valueTemplate, error) {
	t, err := config.ParseValueTemplate(field, s)
	if err != nil {
		return valueTemplate{}, err
	}
	return valueTemplate{literal: s, tmpl: t}, nil
}

// apply returns the attribute for a rewrite value; templates are only
// applied when rewrites are configured (kube-rbac-proxy's behaviour).
func (v valueTemplate) apply(value string, rewriting bool) string {
	if v.tmpl == nil || !rewriting {
		return v.literal
	}
	var b strings.Builder
	if err := v.tmpl.Execute(&b, config.TemplateData{Value: value}); err != nil {
		return ""
	}
	return b.String()
}

// compiledAttributes are ResourceAttributes with their templates parsed.
type compiledAttributes struct {
	namespace, apiGroup, apiVersion, resource, subresource, name valueTemplate
}

func compileAttributeTemplates(ra config.ResourceAttributes) (*compiledAttributes, error) {
	c := &compiledAttributes{}
	for _, f := range []struct {
		field string
		src   string
		dst   *valueTemplate
	}{
		{"namespace", ra.Namespace, &c.namespace},
		{"apiGroup", ra.APIGroup, &c.apiGroup},
		{"apiVersion", ra.APIVersion, &c.apiVersion},
		{"resource", ra.Resource, &c.resource},
		{"subresource", ra.Subresource, &c.subresource},
		{"name", ra.Name, &c.name},
	} {
		v, err := compileValue(f.field, f.src)
		if err != nil {
			return nil, err
		}
		*f.dst = v
	}
	return c, nil
}

// Attributes derives the authorization attributes of a request: the verb
// from the method, and the cleaned path or the configured resource
// attributes, their templates applied to each rewrite value.
type Attributes struct {
	resource   *compiledAttributes // nil: non-resource attributes on the path
	queryParam string              // rewrite sources; empty when unused
	headerName string
	rewriting  bool
}

// NewAttributes compiles the resource attributes and rewrites of a.
func NewAttributes(a config.AuthorizationConfig) (*Attributes, error) {
	b := &Attributes{}
	if a.ResourceAttributes == nil {
		return b, nil
	}
	c, err := compileAttributeTemplates(*a.ResourceAttributes)
	if err != nil {
		return nil, err
	}
	b.resource = c
	if rw := a.Rewrites; rw != nil {
		b.rewriting = true
		if rw.ByQueryParameter != nil {
			b.queryParam = rw.ByQueryParameter.Name
		}
		if rw.ByHTTPHeader != nil {
			b.headerName = http.CanonicalHeaderKey(rw.ByHTTPHeader.Name)
		}
	}
	return b, nil
}

// Build returns the attributes to authorize, all of which must be allowed.
// None means the request lacks the rewrite value it needs (a bad request).
func (b *Attributes) Build(u user.Info, r *http.Request, cleanedPath string) []authorizer.AttributesRecord {
	verb := verbFor(r.Method)
	if b.resource == nil {
		return []authorizer.AttributesRecord{{User: u, Verb: verb, Path: cleanedPath}}
	}
	if !b.rewriting {
		return []authorizer.AttributesRecord{b.resourceRecord(u, verb, "")}
	}
	var values []string
	if b.queryParam != "" {
		values = append(values, r.URL.Query()[b.queryParam]...)
	}
	if b.headerName != "" {
		values = append(values, r.Header[b.headerName]...)
	}
	out := make([]authorizer.AttributesRecord, 0, len(values))
	for _, v := range values {
		out = append(out, b.resourceRecord(u, verb, v))
	}
	return out
}

// errAmbiguousRewrite refuses a request that carries the rewrite value in a
// form the review would not see.
var errAmbiguousRewrite = errors.New("the rewrite value is given in more than one spelling or in a form that is not reviewed")

// CheckRewriteSources refuses (before authentication) a request from which
// an upstream could read a rewrite value other than those Build reviews.
// Build reviews every value of the exact query parameter and of the exact
// header (kube-rbac-proxy reviews every value of the exact query key), one
// review each, and one denial denies. Anything else that an upstream might
// read as the same parameter is not guessed at but refused as ambiguous, so
// that which value wins never depends on the upstream's parser:
//
//   - another spelling of the name: another case (ASP.NET and PHP's
//     $_SERVER, among others, ignore it), "_", "-", "." or " " between the
//     words (PHP turns "." and " " into "_", CGI turns "-" into "_"), a
//     bracket suffix (PHP, Rack and qs read namespace[]=x and namespace[0]=x
//     as the namespace list);
//   - a query that does not parse (a ";" separator, a bad percent escape):
//     net/url skips such a pair, some upstreams read it;
//   - with byQueryParameter, a form body (urlencoded or multipart): Go's
//     FormValue, PHP's $_REQUEST and others read body parameters before the
//     query's, and the proxy does not read bodies.
//
// Refusing costs a legitimate client nothing: none sends two spellings.
func (b *Attributes) CheckRewriteSources(r *http.Request) error {
	if !b.rewriting {
		return nil
	}
	if b.queryParam != "" {
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return errAmbiguousRewrite
		}
		for k := range q {
			if k != b.queryParam && sameRewriteSpelling(k, b.queryParam) {
				return errAmbiguousRewrite
			}
		}
		for _, ct := range r.Header.Values("Content-Type") {
			mt, _, err := mime.ParseMediaType(ct)
			if err != nil {
				mt, _, _ = strings.Cut(strings.ToLower(strings.TrimSpace(ct)), ";")
			}
			if mt == "application/x-www-form-urlencoded" || strings.HasPrefix(mt, "multipart/") {
				return errAmbiguousRewrite
			}
		}
	}
	if b.headerName != "" {
		for k := range r.Header {
			if k != b.headerName && sameRewriteSpelling(k, b.headerName) {
				return errAmbiguousRewrite
			}
		}
		// A Connection header naming the rewritten header would have the ReverseProxy drop it
		// after its values were reviewed: the upstream would see none, and might fall back to a
		// default that nobody reviewed.
		for _, v := range r.Header.Values("Connection") {
			for _, token := range strings.Split(v, ",") {
				if sameRewriteSpelling(strings.TrimSpace(token), b.headerName) {
					return errAmbiguousRewrite
				}
			}
		}
	}
	return nil
}

// sameRewriteSpelling reports whether a and b name the same parameter for
// some upstream: the same letters and digits up to a "[", in any case
// (Unicode folding, so the Kelvin sign is a k).
func sameRewriteSpelling(a, b string) bool {
	return strings.EqualFold(rewriteLetters(a), rewriteLetters(b))
}

func rewriteLetters(s string) string {
	if i := strings.IndexByte(s, '['); i >= 0 {
		s = s[:i]
	}
	return strings.Map(func(c rune) rune {
		if unicode.IsLetter(c) || unicode.IsDigit(c) {
			return c
		}
		return -1
	}, s)
}

func (b *Attributes) resourceRecord(u user.Info, verb, value string) authorizer.AttributesRecord {
	c := b.resource
	return authorizer.AttributesRecord{
		User:            u,
		Verb:            verb,
		Namespace:       c.namespace.apply(value, b.rewriting),
		APIGroup:        c.apiGroup.apply(value, b.rewriting),
		APIVersion:      c.apiVersion.apply(value, b.rewriting),
		Resource:        c.resource.apply(value, b.rewriting),
		Subresource:     c.subresource.apply(value, b.rewriting),
		Name:            c.name.apply(value, b.rewriting),
		ResourceRequest: true,
	}
}

// Describe is a short, log- and response-safe description of attributes.
func Describe(a authorizer.Attributes) string {
	if !a.IsResourceRequest() {
		return fmt.Sprintf("verb=%s path=%s", a.GetVerb(), a.GetPath())
	}
	return fmt.Sprintf("verb=%s namespace=%s apiGroup=%s resource=%s subresource=%s name=%s",
		a.GetVerb(), a.GetNamespace(), a.GetAPIGroup(), a.GetResource(), a.GetSubresource(), a.GetName())
}
