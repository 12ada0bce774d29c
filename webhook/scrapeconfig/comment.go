package scrapeconfig

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// clean makes a value safe to print in a YAML comment line: the values are the tenant's (its
// annotations, its Certificate's names, its own Secret's certificate), and a line break in one
// (YAML 1.1, which Prometheus parses, also breaks at U+0085, U+2028 and U+2029) would end the
// comment and start YAML of the tenant's choosing, a `---` and a ClusterRoleBinding say. A value
// with any character that is not printable is printed quoted, escaped to ASCII.
func clean(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0 {
		return s
	}
	return strconv.QuoteToASCII(s)
}

// commentf formats comment lines: format is the lines, each argument (a string or a Stringer,
// what may hold a tenant's value) passes through clean.
func commentf(format string, args ...any) string {
	safe := make([]any, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case string:
			safe[i] = clean(v)
		case fmt.Stringer:
			safe[i] = clean(v.String())
		default:
			safe[i] = a
		}
	}
	return fmt.Sprintf(format, safe...)
}
