// Package termsafe makes text from others safe to print on a terminal:
// names, metadata and messages that tenants or remotes wrote, which may hold
// escape sequences that would drive the reader's terminal.
package termsafe

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// String returns s as it is safe to print on a terminal: each rune
// that is not printable (control and format characters, every space but
// U+0020, bytes that are not UTF-8) becomes its Go escape (\n, \x1b,
// \u202e), as strconv.Quote writes it; the rest, backslashes included,
// stays as it is.
func String(s string) string {
	if utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unicode.IsPrint(r):
			b.WriteString(s[i : i+size])
		default:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += size
	}
	return b.String()
}
