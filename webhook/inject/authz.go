package inject

import (
	"strconv"
	"strings"
	"unicode"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
)

// parseAuthz reads rbac-proxy.io/authz and what goes with each mode: the clients and groups of
// static, the resource attributes of sar.
func parseAuthz(ann map[string]string, p *Policy, errs *problems) {
	mode, modeSet := ann[AnnotationAuthz]
	if modeSet {
		switch config.AuthzMode(mode) {
		case config.AuthzSAR, config.AuthzStatic:
			p.Authz = config.AuthzMode(mode)
		default:
			errs.add(AnnotationAuthz, mode, "unknown mode", AllowedOf(AnnotationAuthz))
			return
		}
	}
	users, hasUsers := ann[AnnotationAllowedClients]
	groups, hasGroups := ann[AnnotationAllowedGroups]
	attrs, hasAttrs := ann[AnnotationResourceAttributes]
	if hasUsers {
		p.AllowedUsers = parseNames(AnnotationAllowedClients, users, errs)
	}
	if hasGroups {
		p.AllowedGroups = parseNames(AnnotationAllowedGroups, groups, errs)
	}
	switch p.Authz {
	case config.AuthzStatic:
		if !hasUsers && !hasGroups {
			errs.addUnset(AnnotationAllowedClients, AnnotationAuthz+"=static needs allowed clients or groups", AllowedOf(AnnotationAllowedClients)+"; or set "+AnnotationAllowedGroups)
		}
		if hasAttrs {
			errs.add(AnnotationResourceAttributes, attrs, "only used with "+AnnotationAuthz+"=sar", "unset with "+AnnotationAuthz+"=static")
		}
	case config.AuthzSAR:
		if hasUsers {
			errs.add(AnnotationAllowedClients, users, "only used with "+AnnotationAuthz+"=static", "unset, or set "+AnnotationAuthz+"=static")
		}
		if hasGroups {
			errs.add(AnnotationAllowedGroups, groups, "only used with "+AnnotationAuthz+"=static", "unset, or set "+AnnotationAuthz+"=static")
		}
		if hasAttrs {
			p.ResourceAttributes = parseResourceAttributes(attrs, errs)
		}
	}
}

// parseResourceAttributes reads rbac-proxy.io/resource-attributes with the proxy's own parser
// (config.ParseResourceAttributes: its keys, its rules) and the annotation's: no empty item, no
// value that would read otherwise in a flag, a resource; and the proxy's validation of the
// result (its {{ .Value }} templates).
func parseResourceAttributes(v string, errs *problems) *config.ResourceAttributes {
	allowed := AllowedOf(AnnotationResourceAttributes)
	items, ok := splitList(v)
	bad := false
	if !ok {
		errs.add(AnnotationResourceAttributes, v, "empty item", allowed)
		bad = true
	}
	seen := map[string]bool{}
	for _, item := range items {
		key, value, ok := strings.Cut(item, "=")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		switch {
		case !ok || value == "" || !isPlainValue(value):
			errs.add(AnnotationResourceAttributes, v, "malformed item "+strconv.Quote(item), allowed)
		case seen[key]:
			errs.add(AnnotationResourceAttributes, v, "duplicate key "+key, allowed)
		default:
			seen[key] = true
			if _, err := config.ParseResourceAttributes(item); err != nil {
				errs.add(AnnotationResourceAttributes, v, "unknown key "+strconv.Quote(key), allowed)
				break
			}
			continue
		}
		bad = true
	}
	if bad {
		return nil
	}
	ra, err := config.ParseResourceAttributes(v)
	switch {
	case err != nil:
		errs.add(AnnotationResourceAttributes, v, "the proxy would refuse to start: "+err.Error(), allowed)
		return nil
	case ra.Resource == "":
		errs.add(AnnotationResourceAttributes, v, "no resource", allowed)
		return nil
	}
	if refusal := proxyRefusal(func(c *config.Config) { c.Authorization.ResourceAttributes = ra }); refusal != "" {
		errs.add(AnnotationResourceAttributes, v, refusal, allowed)
		return nil
	}
	return ra
}

// isPlainValue refuses characters that would change the meaning of a rendered flag.
func isPlainValue(s string) bool {
	for _, r := range s {
		if r == '=' || r == ',' || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// parseList splits a list annotation and refuses what the list syntax does not carry: empty
// items, and double quotes, since the list is split at every comma with no quoting, so a value
// written as CSV ("a,b") would be read as other items than its author meant.
func parseList(annotation, v string, errs *problems) ([]string, bool) {
	items, ok := splitList(v)
	if !ok {
		errs.add(annotation, v, "empty item", AllowedOf(annotation))
	}
	for _, item := range items {
		if strings.Contains(item, `"`) {
			errs.add(annotation, v, "double quote in "+strconv.Quote(item)+": the list is split at every comma, with no quoting", AllowedOf(annotation))
			return nil, false
		}
	}
	return items, ok
}

func parseNames(annotation, v string, errs *problems) []string {
	items, ok := parseList(annotation, v, errs)
	for _, item := range items {
		for _, r := range item {
			if !unicode.IsPrint(r) {
				errs.add(annotation, v, "non-printable character in "+strconv.Quote(item), AllowedOf(annotation))
				return nil
			}
		}
	}
	if !ok {
		return nil
	}
	return items
}

// parsePaths reads allow-paths or ignore-paths, and asks the proxy's validation of them (their
// path.Match syntax).
func parsePaths(annotation, v string, errs *problems) []string {
	items, ok := parseList(annotation, v, errs)
	for _, item := range items {
		if !strings.HasPrefix(item, "/") || !isPlainValue(item) {
			errs.add(annotation, v, "bad path "+strconv.Quote(item), AllowedOf(annotation))
			return nil
		}
	}
	if !ok || items == nil {
		return nil
	}
	refusal := proxyRefusal(func(c *config.Config) {
		if annotation == AnnotationAllowPaths {
			c.Paths.Allow = items
		} else {
			c.Paths.Ignore = items
		}
	})
	if refusal != "" {
		errs.add(annotation, v, refusal, AllowedOf(annotation))
		return nil
	}
	return items
}
