package webhook

import (
	"fmt"
	"strings"
	"unicode/utf8"

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

// maxShown bounds what one message repeats of an input: an annotation may hold 256 KiB, and a
// message that quoted it in full once per problem would grow with the square of its size. A
// problem, which may name a few items of the value, gets maxProblem.
const (
	maxShown   = 256
	maxProblem = 1024
)

// shorten cuts s to maxShown bytes (on a rune boundary), saying how long it was.
func shorten(s string) string { return shortenTo(s, maxShown) }

func shortenTo(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("… (%d bytes)", len(s))
}

func (e FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.Annotation)
	if e.Unset {
		b.WriteString(" (not set)")
	} else {
		fmt.Fprintf(&b, "=%q", shorten(e.Value))
	}
	if e.Problem != "" {
		b.WriteString(": ")
		b.WriteString(shortenTo(e.Problem, maxProblem))
	}
	if e.Allowed != "" {
		b.WriteString("; allowed: ")
		b.WriteString(e.Allowed)
	}
	return b.String()
}

// PolicyError is every FieldError found in one Pod, up to maxErrors; the handler denies the Pod
// with it.
type PolicyError struct {
	Errors []FieldError
	// Omitted counts the problems beyond maxErrors, which are not listed.
	Omitted int
}

func (e *PolicyError) Error() string {
	msgs := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		msgs[i] = fe.Error()
	}
	out := "rbac-proxy: " + strings.Join(msgs, "; ")
	if e.Omitted > 0 {
		out += fmt.Sprintf("; and %d more problems", e.Omitted)
	}
	return out
}

// maxErrors bounds the problems one message lists, whatever the Pod holds.
const maxErrors = 20

// errorList collects FieldErrors while a policy is parsed.
type errorList struct {
	errs    []FieldError
	omitted int
}

func (l *errorList) push(e FieldError) {
	if len(l.errs) >= maxErrors {
		l.omitted++
		return
	}
	l.errs = append(l.errs, e)
}

func (l *errorList) add(annotation, value, problem, allowed string) {
	l.push(FieldError{Annotation: annotation, Value: value, Problem: problem, Allowed: allowed})
}

func (l *errorList) addUnset(annotation, problem, allowed string) {
	l.push(FieldError{Annotation: annotation, Unset: true, Problem: problem, Allowed: allowed})
}

func (l *errorList) err() error {
	if len(l.errs) == 0 {
		return nil
	}
	return &PolicyError{Errors: l.errs, Omitted: l.omitted}
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
