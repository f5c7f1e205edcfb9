package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/projections/views"
)

// Limits on what a request may carry besides the spec's own.
const (
	// MaxNameLength is the spec's limit on a name, in characters.
	MaxNameLength = pin.MaxNameLength
	// MaxMetaKeys is the spec's limit on meta's keys.
	MaxMetaKeys = 1000
	// MaxMetaKeyLength and MaxMetaValueLength bound each key and value, in
	// characters; MaxMetaBytes bounds all keys and values together, in bytes.
	// Meta is stored with the pin in the log forever: it is for labels, not
	// documents.
	MaxMetaKeyLength   = 255
	MaxMetaValueLength = 2048
	MaxMetaBytes       = 16 << 10
	// MaxIdempotencyKeyLength bounds an Idempotency-Key header.
	MaxIdempotencyKeyLength = 255
)

// pinInput is a Pin object as a client sent it, checked.
type pinInput struct {
	CID cidInput
	// Name is "" when absent.
	Name string
	// Origins are the ones kept (see parseOrigins).
	Origins []string
	Meta    map[string]string
}

// cidInput is a CID as the client wrote it (and as it is echoed back) and in
// the canonical form views are searched by.
type cidInput struct {
	Text      string
	Canonical string
}

// pinBody is the wire shape of a Pin object. Pointers tell absent or null
// from empty.
type pinBody struct {
	CID     *string           `json:"cid"`
	Name    *string           `json:"name"`
	Origins []string          `json:"origins"`
	Meta    map[string]string `json:"meta"`
}

// readBody reads a JSON request body, refusing other content types, bodies
// over max bytes, and bytes that are not UTF-8 (which encoding/json would
// silently turn into U+FFFD).
func readBody(r *http.Request, max int64) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil {
			return nil, badRequest("Content-Type %q does not parse: %v", ct, err)
		}
		if mt != "application/json" {
			return nil, badRequest("Content-Type %q: send the pin as application/json", ct)
		}
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
			return nil, badRequest("Content-Type %q: JSON bodies are UTF-8", ct)
		}
	}
	if r.Body == nil {
		return nil, badRequest("no body: send a Pin object as JSON")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		return nil, badRequest("reading the body: %v", err)
	}
	if int64(len(body)) > max {
		return nil, badRequest("body larger than %d bytes", max)
	}
	return body, nil
}

// parsePin decodes and checks a Pin object.
func parsePin(body []byte, allowPrivate bool) (pinInput, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return pinInput{}, badRequest("empty body: send a Pin object as JSON")
	}
	if !utf8.Valid(body) {
		return pinInput{}, badRequest("body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var b pinBody
	if err := dec.Decode(&b); err != nil {
		return pinInput{}, badRequest("body is not a Pin object: %s", jsonProblem(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return pinInput{}, badRequest("body has more after the Pin object")
	}
	if b.CID == nil {
		return pinInput{}, badRequest("cid is required")
	}
	c, err := parseCID(*b.CID)
	if err != nil {
		return pinInput{}, badRequest("cid: %v", err)
	}
	in := pinInput{CID: cidInput{Text: *b.CID, Canonical: canonicalCID(c)}}
	if b.Name != nil {
		if err := checkName(*b.Name); err != nil {
			return pinInput{}, badRequest("name: %v", err)
		}
		in.Name = *b.Name
	}
	if in.Origins, err = parseOrigins(b.Origins, allowPrivate); err != nil {
		return pinInput{}, badRequest("%v", err)
	}
	if err := checkMeta(b.Meta); err != nil {
		return pinInput{}, badRequest("meta: %v", err)
	}
	if len(b.Meta) > 0 {
		in.Meta = b.Meta
	}
	return in, nil
}

// jsonProblem says what is wrong with a JSON document in a client's terms.
func jsonProblem(err error) string {
	var typ *json.UnmarshalTypeError
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &typ):
		problem := fmt.Sprintf("a JSON %s where %s belongs", typ.Value, jsonKind(typ.Type.String()))
		if typ.Field == "" {
			return problem
		}
		return typ.Field + ": " + problem
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte %d: %v", syn.Offset, syn)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "the JSON ends early"
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return strings.TrimPrefix(err.Error(), "json: ") + " (a Pin has cid, name, origins and meta)"
	}
	return err.Error()
}

func jsonKind(goType string) string {
	switch goType {
	case "string", "*string":
		return "a string"
	case "[]string":
		return "an array of strings"
	case "map[string]string":
		return "an object of strings"
	}
	return "an object"
}

// checkName enforces the spec's limit on names.
func checkName(name string) error {
	if !utf8.ValidString(name) {
		return errors.New("not valid UTF-8")
	}
	if n := utf8.RuneCountInString(name); n > MaxNameLength {
		return fmt.Errorf("%d characters, at most %d", n, MaxNameLength)
	}
	return nil
}

// checkMeta enforces the limits on meta.
func checkMeta(meta map[string]string) error {
	if len(meta) > MaxMetaKeys {
		return fmt.Errorf("%d keys, at most %d", len(meta), MaxMetaKeys)
	}
	total := 0
	for k, v := range meta {
		switch {
		case k == "":
			return errors.New("empty key")
		case !utf8.ValidString(k) || !utf8.ValidString(v):
			return fmt.Errorf("key %q: not valid UTF-8", k)
		case utf8.RuneCountInString(k) > MaxMetaKeyLength:
			return fmt.Errorf("key %.40q...: longer than %d characters", k, MaxMetaKeyLength)
		case utf8.RuneCountInString(v) > MaxMetaValueLength:
			return fmt.Errorf("key %q: value longer than %d characters", k, MaxMetaValueLength)
		}
		total += len(k) + len(v)
	}
	if total > MaxMetaBytes {
		return fmt.Errorf("%d bytes of keys and values, at most %d", total, MaxMetaBytes)
	}
	return nil
}

// parseMetaFilter decodes the meta query parameter: a JSON object of
// strings.
func parseMetaFilter(s string) (map[string]string, error) {
	if !utf8.ValidString(s) {
		return nil, errors.New("not valid UTF-8")
	}
	dec := json.NewDecoder(strings.NewReader(s))
	var m map[string]string
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("not a JSON object of strings: %s", jsonProblem(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("more after the JSON object")
	}
	if m == nil {
		return nil, errors.New("null, want a JSON object of strings")
	}
	return m, checkMeta(m)
}

// parseTime reads a timestamp as RFC 3339 (section 5.6) with an explicit
// offset.
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 timestamp such as 2020-07-27T17:32:28.276Z", s)
	}
	return t, nil
}

// parseLimit reads a listing's limit: digits only, 1 to MaxListLimit.
func parseLimit(s string) (int, error) {
	if s == "" || len(s) > 9 || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a whole number from 1 to %d", s, views.MaxListLimit)
	}
	n, _ := strconv.Atoi(s)
	if n < 1 || n > views.MaxListLimit {
		return 0, fmt.Errorf("%d is out of range: from 1 to %d", n, views.MaxListLimit)
	}
	return n, nil
}

// splitList reads a form-style, comma-separated query parameter (the spec's
// explode: false). Repeating the parameter adds to the list, as some clients
// do. Empty items (an empty parameter, a trailing or doubled comma) are
// refused, and so are repeated ones (uniqueItems); every refusal is a 400.
// The list is as long as the query, which the server bounds: callers bound
// its items.
func splitList(name string, values []string) ([]string, error) {
	var items []string
	seen := map[string]bool{}
	for _, v := range values {
		for item := range strings.SplitSeq(v, ",") {
			if item == "" {
				return nil, badRequest("%s: empty item in %.80q (an empty parameter, or a comma too many)", name, v)
			}
			if seen[item] {
				return nil, badRequest("%s: %.80q given twice", name, item)
			}
			seen[item] = true
			items = append(items, item)
		}
	}
	return items, nil
}

// single returns a query parameter that may be given once.
func single(q url.Values, name string) (string, bool, error) {
	v, ok := q[name]
	switch {
	case !ok:
		return "", false, nil
	case len(v) > 1:
		return "", false, fmt.Errorf("%s given %d times, at most once", name, len(v))
	}
	return v[0], true, nil
}

// listParams are the query parameters of GET /pins.
func listParams() []string {
	return []string{"cid", "name", "match", "status", "before", "after", "limit", "meta"}
}

// parseListQuery reads the query of GET /pins (the Pinning Service API
// listing) into a view query for tenant.
func parseListQuery(tenant string, q url.Values) (views.ListQuery, error) {
	for name := range q {
		if !contains(listParams(), name) {
			return views.ListQuery{}, badRequest("unknown query parameter %q (GET /pins takes %s)", name, strings.Join(listParams(), ", "))
		}
	}
	lq := views.ListQuery{Tenant: tenant, Limit: 10, Match: views.MatchExact, Statuses: []pin.Status{pin.StatusPinned}}
	if v, ok := q["cid"]; ok {
		items, err := splitList("cid", v)
		if err != nil {
			return lq, err
		}
		if len(items) > views.MaxListCIDs {
			return lq, badRequest("cid: %d CIDs, at most %d", len(items), views.MaxListCIDs)
		}
		for _, s := range items {
			c, err := parseCID(s)
			if err != nil {
				return lq, badRequest("cid: %v", err)
			}
			lq.CIDs = append(lq.CIDs, canonicalCID(c))
		}
	}
	for _, p := range []struct {
		name  string
		parse func(string) error
	}{
		{"name", func(s string) error { lq.Name = s; return checkName(s) }},
		{"match", func(s string) (err error) { lq.Match, err = views.ParseMatch(s); return }},
		{"before", func(s string) (err error) { lq.Before, err = parseTime(s); return }},
		{"after", func(s string) (err error) { lq.After, err = parseTime(s); return }},
		{"limit", func(s string) (err error) { lq.Limit, err = parseLimit(s); return }},
		{"meta", func(s string) (err error) { lq.Meta, err = parseMetaFilter(s); return }},
	} {
		s, ok, err := single(q, p.name)
		if err == nil && ok {
			err = p.parse(s)
		}
		if err != nil {
			return lq, badRequest("%s: %v", p.name, err)
		}
	}
	if v, ok := q["status"]; ok {
		items, err := splitList("status", v)
		if err != nil {
			return lq, err
		}
		lq.Statuses = nil
		for _, s := range items {
			st, err := pin.ParseStatus(s)
			if err != nil {
				return lq, badRequest("status: %q is not a status (want queued, pinning, pinned or failed)", s)
			}
			lq.Statuses = append(lq.Statuses, st)
		}
	}
	if len(lq.Meta) == 0 {
		lq.Meta = nil
	}
	// The spec's listing shows pinned pins only "when no filter is
	// provided": a search by cid, name or meta finds pins in every status
	// (kubo's `ipfs pin remote ls --cid` and the compliance checks rely on
	// it). before, after and limit page through a listing and leave its
	// default alone, so that every page of one listing has the same
	// statuses.
	if _, ok := q["status"]; !ok && (len(lq.CIDs) > 0 || lq.Name != "" || lq.Meta != nil) {
		lq.Statuses = nil
	}
	return lq, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// parseIdempotencyKey reads an Idempotency-Key header: printable ASCII, 1 to
// MaxIdempotencyKeyLength characters, bare or as a quoted structured-field
// string (draft-ietf-httpapi-idempotency-key-header).
func parseIdempotencyKey(h http.Header) (string, bool, error) {
	v := h.Values("Idempotency-Key")
	switch {
	case len(v) == 0:
		return "", false, nil
	case len(v) > 1:
		return "", false, badRequest("Idempotency-Key given %d times, at most once", len(v))
	}
	key := v[0]
	if len(key) >= 2 && key[0] == '"' && key[len(key)-1] == '"' {
		key = key[1 : len(key)-1]
	}
	switch {
	case key == "":
		return "", false, badRequest("Idempotency-Key is empty")
	case len(key) > MaxIdempotencyKeyLength:
		return "", false, badRequest("Idempotency-Key of %d characters, at most %d", len(key), MaxIdempotencyKeyLength)
	case strings.ContainsFunc(key, func(r rune) bool { return r < 0x21 || r > 0x7e || r == '"' || r == '\\' }):
		return "", false, badRequest("Idempotency-Key %q: printable ASCII only, no spaces, quotes or backslashes", key)
	}
	return key, true, nil
}
