package inject

import (
	"strconv"
	"strings"
	"unicode"
)

func parseAuthz(ann map[string]string, p *Policy, errs *problems) {
	mode, modeSet := ann[AnnotationAuthz]
	if modeSet {
		switch AuthzMode(mode) {
		case AuthzSAR, AuthzStatic:
			p.Authz = AuthzMode(mode)
		default:
			errs.add(AnnotationAuthz, mode, "unknown mode", "sar, static")
			return
		}
	}
	users, hasUsers := ann[AnnotationAllowedClients]
	groups, hasGroups := ann[AnnotationAllowedGroups]
	attrs, hasAttrs := ann[AnnotationResourceAttributes]
	if hasUsers {
		p.AllowedUsers = parseNames(AnnotationAllowedClients, users, "comma-separated user names or certificate CNs", errs)
	}
	if hasGroups {
		p.AllowedGroups = parseNames(AnnotationAllowedGroups, groups, "comma-separated group names", errs)
	}
	switch p.Authz {
	case AuthzStatic:
		if !hasUsers && !hasGroups {
			errs.addUnset(AnnotationAllowedClients, AnnotationAuthz+"=static needs allowed clients or groups", "comma-separated user names or certificate CNs (or set "+AnnotationAllowedGroups+")")
		}
		if hasAttrs {
			errs.add(AnnotationResourceAttributes, attrs, "only used with "+AnnotationAuthz+"=sar", "unset with "+AnnotationAuthz+"=static")
		}
	case AuthzSAR:
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

const resourceAttributesAllowed = "comma-separated key=value with keys namespace, apigroup, apiversion, resource, subresource, name; resource is required"

func parseResourceAttributes(v string, errs *problems) *ResourceAttributes {
	items, ok := splitList(v)
	bad := false
	if !ok {
		errs.add(AnnotationResourceAttributes, v, "empty item", resourceAttributesAllowed)
		bad = true
	}
	ra := &ResourceAttributes{}
	keys := resourceAttributeKeys(ra)
	seen := map[string]bool{}
	for _, item := range items {
		key, value, ok := strings.Cut(item, "=")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if !ok || value == "" || !isPlainValue(value) {
			errs.add(AnnotationResourceAttributes, v, "malformed item "+strconv.Quote(item), resourceAttributesAllowed)
			bad = true
			continue
		}
		if seen[key] {
			errs.add(AnnotationResourceAttributes, v, "duplicate key "+key, resourceAttributesAllowed)
			bad = true
			continue
		}
		seen[key] = true
		found := false
		for _, k := range keys {
			if k.key == key {
				*k.value, found = value, true
			}
		}
		if !found {
			errs.add(AnnotationResourceAttributes, v, "unknown key "+strconv.Quote(key), resourceAttributesAllowed)
			bad = true
		}
	}
	if !bad && ra.Resource == "" {
		errs.add(AnnotationResourceAttributes, v, "no resource", resourceAttributesAllowed)
		bad = true
	}
	if bad {
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

func parseNames(annotation, v, allowed string, errs *problems) []string {
	items, ok := splitList(v)
	if !ok {
		errs.add(annotation, v, "empty item", allowed)
	}
	for _, item := range items {
		for _, r := range item {
			if !unicode.IsPrint(r) {
				errs.add(annotation, v, "non-printable character in "+strconv.Quote(item), allowed)
				return nil
			}
		}
	}
	return items
}

func parsePaths(annotation, v string, errs *problems) []string {
	allowed := "comma-separated paths starting with /, * globs allowed"
	items, ok := splitList(v)
	if !ok {
		errs.add(annotation, v, "empty item", allowed)
	}
	for _, item := range items {
		if !strings.HasPrefix(item, "/") || !isPlainValue(item) {
			errs.add(annotation, v, "bad path "+strconv.Quote(item), allowed)
			return nil
		}
	}
	return items
}
