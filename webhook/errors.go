package webhook

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// FieldError is one bad annotation: which one, the value it has and what would be allowed.
type FieldError struct {
	Annotation string
	// Value is the annotation's value; Unset marks an annotation that is missing but needed.
	Value string
	Unset bool
	// Problem says what is wrong with the value, when "not allowed" is not enough.
	Problem string
	Allowed string
}

func (e FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.Annotation)
	if e.Unset {
		b.WriteString(" (not set)")
	} else {
		fmt.Fprintf(&b, "=%q", e.Value)
	}
	if e.Problem != "" {
		b.WriteString(": ")
		b.WriteString(e.Problem)
	}
	if e.Allowed != "" {
		b.WriteString("; allowed: ")
		b.WriteString(e.Allowed)
	}
	return b.String()
}

// PolicyError is every FieldError found in one Pod; the handler denies the Pod with it.
type PolicyError struct {
	Errors []FieldError
}

func (e *PolicyError) Error() string {
	msgs := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		msgs[i] = fe.Error()
	}
	return "rbac-proxy: " + strings.Join(msgs, "; ")
}

// errorList collects FieldErrors while a policy is parsed.
type errorList struct {
	errs []FieldError
}

func (l *errorList) add(annotation, value, problem, allowed string) {
	l.errs = append(l.errs, FieldError{Annotation: annotation, Value: value, Problem: problem, Allowed: allowed})
}

func (l *errorList) addUnset(annotation, problem, allowed string) {
	l.errs = append(l.errs, FieldError{Annotation: annotation, Unset: true, Problem: problem, Allowed: allowed})
}

func (l *errorList) err() error {
	if len(l.errs) == 0 {
		return nil
	}
	return &PolicyError{Errors: l.errs}
}

// splitList splits a comma-separated annotation value, trimming blanks. It returns the non-empty
// items, and ok=false when there were empty ones.
func splitList(value string) (items []string, ok bool) {
	ok = true
	for _, item := range strings.Split(value, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			ok = false
			continue
		}
		items = append(items, item)
	}
	return items, ok
}

func dnsSubdomainErrors(name string) []string {
	return validation.IsDNS1123Subdomain(name)
}
