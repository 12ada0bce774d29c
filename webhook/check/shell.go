package check

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// shellQuote is s as one word of a shell command line, so that a fix pasted into a shell runs
// the command it shows with s as one argument, whatever s holds: as it is when it is only
// characters no shell treats specially; in single quotes when it holds other printable ones;
// and as $'...' with \xHH escapes when it holds a control or format character (a newline, an
// escape, a bidirectional override), which no valid object name holds, so that the fix stays one
// line and shows what it runs.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool { return !plainShellRune(r) }) < 0 {
		return s
	}
	if utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return !unicode.IsGraphic(r) }) < 0 {
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	var b strings.Builder
	b.WriteString("$'")
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '\\' || r == '\'':
			b.WriteByte('\\')
			b.WriteByte(byte(r))
		case r == utf8.RuneError && n == 1, !unicode.IsGraphic(r):
			for _, c := range []byte(s[i : i+n]) {
				fmt.Fprintf(&b, `\x%02x`, c)
			}
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	b.WriteByte('\'')
	return b.String()
}

// plainShellRune: no POSIX shell gives these a meaning in a word (not at its start either).
func plainShellRune(r rune) bool {
	return r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("@%+=:,./_-", r))
}

// command is a command line of words, each quoted by shellQuote.
func command(words ...string) string {
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = shellQuote(w)
	}
	return strings.Join(quoted, " ")
}
