package viewrow

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"iter"
)

// Checksum is the SHA-256 of a dump's rows: two views are equal exactly
// when their checksums are.
func Checksum(rows Rows) (string, error) {
	h := sha256.New()
	for r, err := range rows {
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%s\x00%s\n", r.Table, r.Key, r.Value)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Diff compares two dumps row by row. It returns the first limit
// differences, in words, and how many there are in all.
func Diff(a, b Rows, limit int) (shown []string, total int, err error) {
	nextA, stopA := iter.Pull2(iter.Seq2[DumpRow, error](a))
	defer stopA()
	nextB, stopB := iter.Pull2(iter.Seq2[DumpRow, error](b))
	defer stopB()
	order := map[string]int{}
	for i, t := range DumpTables() {
		order[t] = i
	}
	note := func(format string, args ...any) {
		total++
		if len(shown) < limit {
			shown = append(shown, fmt.Sprintf(format, args...))
		}
	}
	ra, ea, okA := nextA()
	rb, eb, okB := nextB()
	for okA || okB {
		if ea != nil {
			return shown, total, ea
		}
		if eb != nil {
			return shown, total, eb
		}
		c := 0
		switch {
		case !okA:
			c = 1
		case !okB:
			c = -1
		case order[ra.Table] != order[rb.Table]:
			c = order[ra.Table] - order[rb.Table]
		case ra.Key < rb.Key:
			c = -1
		case ra.Key > rb.Key:
			c = 1
		}
		switch {
		case c < 0:
			note("%s %q: only in the first: %s", ra.Table, ra.Key, ra.Value)
			ra, ea, okA = nextA()
		case c > 0:
			note("%s %q: only in the second: %s", rb.Table, rb.Key, rb.Value)
			rb, eb, okB = nextB()
		default:
			if string(ra.Value) != string(rb.Value) {
				note("%s %q: first %s, second %s", ra.Table, ra.Key, ra.Value, rb.Value)
			}
			ra, ea, okA = nextA()
			rb, eb, okB = nextB()
		}
	}
	return shown, total, nil
}
