package api

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// TimeLayout is how pickup writes times: RFC 3339 in UTC with all six
// digits of the microseconds it keeps. A fixed width, unlike
// time.RFC3339Nano's, which drops trailing zeros.
const TimeLayout = "2006-01-02T15:04:05.000000Z07:00"

// FormatTime writes t the way every answer does.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// Time is a timestamp in JSON: written in TimeLayout, read from any RFC
// 3339 time (other services write fewer digits). The zero Time is written
// as Go writes the zero time.Time, 0001-01-01T00:00:00Z, which
// ipfs-cluster reads as "never" (a pin's expire_at).
type Time struct{ time.Time }

// MarshalJSON writes t as a JSON string.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte(`"0001-01-01T00:00:00Z"`), nil
	}
	return strconv.AppendQuote(nil, FormatTime(t.Time)), nil
}

// UnmarshalJSON reads an RFC 3339 time; null leaves t as it is, like
// time.Time's.
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("time %s: not a JSON string", b)
	}
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return fmt.Errorf("time %q: not RFC 3339: %w", s, err)
	}
	t.Time = v
	return nil
}
