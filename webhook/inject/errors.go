package inject

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// annotationsPath is where a Pod's annotations are: every problem the injector reports is on one
// of them, as field.Errors on metadata.annotations[NAME].
var annotationsPath = field.NewPath("metadata", "annotations")

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

// allowedSep separates, in a field.Error's Detail, what is wrong from what would be allowed.
const allowedSep = "; allowed: "

// InvalidAnnotation is a bad value of an annotation: what is wrong with it and what is allowed.
func InvalidAnnotation(annotation, value, problem, allowed string) *field.Error {
	return field.Invalid(annotationsPath.Key(annotation), value, shortenTo(problem, maxProblem)+allowedSep+allowed)
}

// UnsetAnnotation is an annotation that is not set and needed: the default does not work.
func UnsetAnnotation(annotation, problem, allowed string) *field.Error {
	return field.Required(annotationsPath.Key(annotation), shortenTo(problem, maxProblem)+allowedSep+allowed)
}

// annotationOf is the annotation a field.Error is about.
func annotationOf(e *field.Error) string {
	return strings.TrimSuffix(strings.TrimPrefix(e.Field, annotationsPath.String()+"["), "]")
}

// describe is one problem as a denial lists it: the annotation, its value cut to maxShown bytes
// (or that it is not set), what is wrong and what is allowed.
func describe(e *field.Error) string {
	value := " (not set)"
	if e.Type != field.ErrorTypeRequired {
		value = fmt.Sprintf("=%q", shorten(fmt.Sprint(e.BadValue)))
	}
	return annotationOf(e) + value + ": " + e.Detail
}

// PolicyError is every problem found in one Pod, up to maxErrors; the handler denies the Pod
// with it.
type PolicyError struct {
	Errors field.ErrorList
	// Omitted counts the problems beyond maxErrors, which are not listed.
	Omitted int
}

func (e *PolicyError) Error() string {
	msgs := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		msgs[i] = describe(fe)
	}
	out := "rbac-proxy: " + strings.Join(msgs, "; ")
	if e.Omitted > 0 {
		out += fmt.Sprintf("; and %d more problems", e.Omitted)
	}
	return out
}

// maxErrors bounds the problems one message lists, whatever the Pod holds.
const maxErrors = 20

// problems collects the field.Errors of one Pod while its policy is parsed, the first maxErrors
// of them: a Pod may hold thousands of bad items, and neither its denial nor the memory spent on
// it may grow with them.
type problems struct {
	list    field.ErrorList
	omitted int
}

// full reports whether the list holds maxErrors already, counting the problem it turns away.
func (p *problems) full() bool {
	if len(p.list) < maxErrors {
		return false
	}
	p.omitted++
	return true
}

func (p *problems) add(annotation, value, problem, allowed string) {
	if !p.full() {
		p.list = append(p.list, InvalidAnnotation(annotation, value, problem, allowed))
	}
}

func (p *problems) addUnset(annotation, problem, allowed string) {
	if !p.full() {
		p.list = append(p.list, UnsetAnnotation(annotation, problem, allowed))
	}
}

func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	return &PolicyError{Errors: p.list, Omitted: p.omitted}
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
