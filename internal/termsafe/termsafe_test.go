package termsafe_test

import (
	"testing"

	"github.com/pickup-ipfs/pickup/internal/termsafe"
)

func TestString(t *testing.T) {
	for in, want := range map[string]string{
		"hello":               "hello",
		"a b/c\\d é ü 日本 🚀":   "a b/c\\d é ü 日本 🚀",
		"\x1b[31mred\x1b[0m":  `\x1b[31mred\x1b[0m`,
		"line\nnext\r":        `line\nnext\r`,
		"tab\there":           `tab\there`,
		"bell\a del\x7f":      `bell\a del\x7f`,
		"csi\u009b2J":         `csi\u009b2J`,
		"\u202eevil\u2066":    `\u202eevil\u2066`,
		"zero\u200bwidth":     `zero\u200bwidth`,
		"nbsp\u00a0":          `nbsp\u00a0`,
		"bad \xff\xfe bytes":  `bad \xff\xfe bytes`,
		"\ufffd is printable": "\ufffd is printable",
	} {
		if got := termsafe.String(in); got != want {
			t.Errorf("termsafe.String(%q) = %q, want %q", in, got, want)
		}
	}
}
