package middleware

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/internal/text"
)

// lookup returns, for each path, the raw JSON value reached by following its
// member names down from the object doc, or nil where a member is absent.
// doc must be exactly one JSON object. Only the members on the paths are
// kept; the rest is checked and skipped. A problem on a path is reported
// with the path's sentinel.
func lookup(doc []byte, paths []jsonPath) ([]json.RawMessage, error) {
	out := make([]json.RawMessage, len(paths))
	active := make([]int, len(paths))
	for i := range active {
		active[i] = i
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	tok, err := dec.Token()
	if err != nil {
		return nil, badJSON(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, &FieldError{Field: "body", Reason: "not a JSON object"}
	}
	if err := walk(dec, paths, 0, active, out); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		if err == nil {
			return nil, &FieldError{Field: "body", Reason: "more than one JSON value"}
		}
		return nil, badJSON(err)
	}
	return out, nil
}

// walk reads the members of an object whose '{' dec has just read, down to
// its '}'. active are the paths whose first depth names led here.
func walk(dec *json.Decoder, paths []jsonPath, depth int, active []int, out []json.RawMessage) error {
	var seen []string
	var skip json.RawMessage
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return badJSON(err)
		}
		name, _ := tok.(string) // a member name is always a string
		var leaves, inner []int
		for _, i := range active {
			if p := paths[i].names; p[depth] == name {
				if len(p) == depth+1 {
					leaves = append(leaves, i)
				} else {
					inner = append(inner, i)
				}
			}
		}
		if leaves == nil && inner == nil {
			if err := dec.Decode(&skip); err != nil {
				return badJSON(err)
			}
			continue
		}
		var first int
		if len(leaves) > 0 {
			first = leaves[0]
		} else {
			first = inner[0]
		}
		if slices.Contains(seen, name) {
			p := paths[first]
			return &FieldError{Field: p.field, Reason: fmt.Sprintf("member %s appears twice in one object, and parsers differ on which one counts", strconv.Quote(strings.Join(p.names[:depth+1], "."))), Err: p.sentinel}
		}
		seen = append(seen, name)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return badJSON(err)
		}
		for _, i := range leaves {
			out[i] = raw
		}
		if len(inner) == 0 || isNull(raw) {
			continue
		}
		if raw[0] != '{' {
			p := paths[inner[0]]
			return &FieldError{Field: p.field, Reason: fmt.Sprintf("%s is %s, not an object", strconv.Quote(strings.Join(p.names[:depth+1], ".")), kindOf(raw)), Err: p.sentinel}
		}
		sub := json.NewDecoder(bytes.NewReader(raw))
		if _, err := sub.Token(); err != nil {
			return badJSON(err)
		}
		if err := walk(sub, paths, depth+1, inner, out); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return badJSON(err)
	}
	return nil
}

// jsonPath is a member path into a JSON document, named in errors as field
// and reported with sentinel.
type jsonPath struct {
	names    []string
	field    string
	sentinel error
}

// newPath panics, for the named constructor, if p has an empty segment.
func newPath(fn, p string, sentinel error) jsonPath {
	names := strings.Split(p, ".")
	for _, s := range names {
		if s == "" {
			panic(fmt.Sprintf("middleware.%s: bad path %q: empty member name", fn, p))
		}
	}
	return jsonPath{names: names, field: "JSON field " + strconv.Quote(p), sentinel: sentinel}
}

func badJSON(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &FieldError{Field: "body", Reason: fmt.Sprintf("not valid JSON at byte %d: %v", se.Offset, err)}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &FieldError{Field: "body", Reason: "not valid JSON: unexpected end"}
	}
	return &FieldError{Field: "body", Reason: "not valid JSON: " + err.Error()}
}

func isNull(raw json.RawMessage) bool { return raw == nil || string(raw) == "null" }

func kindOf(raw json.RawMessage) string {
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// jsonString decodes a JSON string, refusing what encoding/json would
// silently turn into U+FFFD: invalid UTF-8 and unpaired surrogate escapes.
// Distinct keys would otherwise collapse into one.
func jsonString(field string, raw json.RawMessage, sentinel error) (string, error) {
	if raw[0] != '"' {
		return "", &FieldError{Field: field, Reason: "is " + kindOf(raw) + ", not a string", Err: sentinel}
	}
	if !utf8.Valid(raw) {
		return "", &FieldError{Field: field, Reason: "not valid UTF-8", Err: sentinel}
	}
	if loneSurrogate(raw) {
		return "", &FieldError{Field: field, Reason: "holds an unpaired UTF-16 surrogate escape", Err: sentinel}
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", &FieldError{Field: field, Reason: "not a valid JSON string: " + err.Error(), Err: sentinel}
	}
	return s, nil
}

// loneSurrogate reports whether the JSON string raw escapes half a
// surrogate pair. raw is valid JSON, so every escape is complete.
func loneSurrogate(raw []byte) bool {
	for i := 0; i+5 < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		if raw[i+1] != 'u' {
			i++ // an escaped character, perhaps a backslash
			continue
		}
		r := hex4(raw[i+2 : i+6])
		switch {
		case r >= 0xD800 && r < 0xDC00:
			if i+11 < len(raw) && raw[i+6] == '\\' && raw[i+7] == 'u' {
				if lo := hex4(raw[i+8 : i+12]); lo >= 0xDC00 && lo <= 0xDFFF {
					i += 11
					continue
				}
			}
			return true
		case r >= 0xDC00 && r <= 0xDFFF:
			return true
		}
		i += 5
	}
	return false
}

func hex4(b []byte) rune {
	n, err := strconv.ParseUint(string(b), 16, 32)
	if err != nil {
		return -1
	}
	return rune(n) //nolint:gosec // G115: four hex digits, at most 0xFFFF
}

// jsonKey reads an entity key written as a string or an integer (many
// senders number their entities).
func jsonKey(field string, raw json.RawMessage) (string, error) {
	var key string
	switch {
	case raw[0] == '"':
		s, err := jsonString(field, raw, revguard.ErrInvalidKey)
		if err != nil {
			return "", err
		}
		key = s
	case raw[0] == '-' || ('0' <= raw[0] && raw[0] <= '9'):
		s := string(raw)
		if !text.AllDigits(strings.TrimPrefix(s, "-")) {
			return "", &FieldError{Field: field, Reason: s + " is not an integer", Err: revguard.ErrInvalidKey}
		}
		key = s
	default:
		return "", &FieldError{Field: field, Reason: "is " + kindOf(raw) + ", not a string or an integer", Err: revguard.ErrInvalidKey}
	}
	return key, checkKey(field, key)
}

// jsonRevision reads a revision written as an integer or as a string that
// revguard.ParseRevision reads.
func jsonRevision(cfg *config, field string, raw json.RawMessage) (revguard.Revision, error) {
	if raw[0] == '"' {
		s, err := jsonString(field, raw, revguard.ErrInvalidRevision)
		if err != nil {
			return 0, err
		}
		return parseRevision(cfg, field, s)
	}
	rev, err := jsonCounter(field, raw)
	if err != nil {
		return 0, err
	}
	return rev, cfg.revisionKind(field, string(raw), true)
}

// jsonCounter reads an integer from its JSON text rather than through
// float64, so that the whole uint64 range is exact.
func jsonCounter(field string, raw json.RawMessage) (revguard.Revision, error) {
	s := string(raw)
	switch {
	case raw[0] == '-':
		return 0, &FieldError{Field: field, Reason: text.Quote(s) + " is negative", Err: revguard.ErrInvalidRevision}
	case raw[0] < '0' || raw[0] > '9':
		return 0, &FieldError{Field: field, Reason: "is " + kindOf(raw) + ", not an integer or a string", Err: revguard.ErrInvalidRevision}
	case !text.AllDigits(s):
		return 0, &FieldError{Field: field, Reason: text.Quote(s) + " is not an integer", Err: revguard.ErrInvalidRevision}
	}
	return parseCounter(field, s)
}
