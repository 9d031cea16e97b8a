package middleware

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/internal/text"
)

// FieldError is the error an extractor returns: the part of the request it
// could not use, and why. Err is [revguard.ErrInvalidKey],
// [revguard.ErrInvalidRevision] or [ErrBodyTooLarge], or nil when the request
// is unusable for another reason (the guard then reports it wrapped in
// [revguard.ErrInvalidEvent]). [HTTP] answers with Field and Reason in the
// problem's detail, so that the sender learns what to fix.
type FieldError struct {
	Field  string // such as `header "Event-Key"` or `JSON field "data.id"`; empty for the body as a whole
	Reason string // what is wrong with it, in words the sender can act on
	Err    error  // see above; nil for other reasons
}

// Error puts Err first, then Field and Reason, so that the message starts
// with the class of fault.
func (e *FieldError) Error() string {
	var b strings.Builder
	if e.Err != nil {
		b.WriteString(e.Err.Error())
		b.WriteString(": ")
	}
	b.WriteString(e.detail())
	return b.String()
}

func (e *FieldError) detail() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

// Unwrap returns Err, so that [errors.Is] tells a bad key from a bad
// revision or an oversized body.
func (e *FieldError) Unwrap() error { return e.Err }

// Headers returns an extractor that reads the entity key from the header
// keyHeader and the revision from the header revisionHeader, as
// [revguard.ParseRevision] reads it (a decimal counter or an RFC 3339
// timestamp). A missing header, or one sent several times with different
// values, is refused. It panics if a name is not a valid header name.
func Headers(keyHeader, revisionHeader string) revguard.Extractor[*http.Request] {
	checkHeaderName("Headers", keyHeader)
	checkHeaderName("Headers", revisionHeader)
	kh, rh := http.CanonicalHeaderKey(keyHeader), http.CanonicalHeaderKey(revisionHeader)
	kf, rf := "header "+strconv.Quote(keyHeader), "header "+strconv.Quote(revisionHeader)
	return func(r *http.Request) (string, revguard.Revision, error) {
		key, ok, err := single(r.Header, kh, kf, revguard.ErrInvalidKey)
		if err != nil {
			return "", 0, err
		}
		if !ok {
			return "", 0, &FieldError{Field: kf, Reason: "missing", Err: revguard.ErrInvalidKey}
		}
		if err := checkKey(kf, key); err != nil {
			return "", 0, err
		}
		v, ok, err := single(r.Header, rh, rf, revguard.ErrInvalidRevision)
		if err != nil {
			return "", 0, err
		}
		if !ok {
			return "", 0, &FieldError{Field: rf, Reason: "missing", Err: revguard.ErrInvalidRevision}
		}
		rev, err := parseRevision(settings(r), rf, v)
		return key, rev, err
	}
}

// CloudEvents returns an extractor for CloudEvents over HTTP. In binary mode
// the key is [revguard.Key](ce-source, ce-subject), or revguard.Key(ce-source)
// when there is no ce-subject, with both percent-decoded as the HTTP binding
// says; the revision is ce-sequence, a decimal counter, or else ce-time, an
// RFC 3339 timestamp. In structured mode (Content-Type
// application/cloudevents+json) the same attributes are read from the JSON
// body, which the inner handler then reads intact; sequence may be a string
// or an integer. The key is the same for one event in either mode. Batched
// mode is refused.
//
// The sequence extension is a string that CloudEvents orders
// lexicographically; producers that count zero-pad their counters
// ("000042"), which read as the number they spell. Any other sequence (a
// UUID, a Kafka-style "topic-partition-offset") is refused as a bad
// revision: map it to a counter in an Extractor of your own, or use
// [CloudEventsByTime] to order by time instead.
func CloudEvents() revguard.Extractor[*http.Request] { return cloudEvent }

// CloudEventsByTime is [CloudEvents] ordered by the time attribute alone: the
// sequence extension is ignored, for producers whose sequence is not a
// decimal counter. Two events of one entity stamped with the same time are
// then one revision, so the producer's clock must tell them apart.
func CloudEventsByTime() revguard.Extractor[*http.Request] { return cloudEventByTime }

func cloudEvent(r *http.Request) (string, revguard.Revision, error) {
	return readCloudEvent(r, false)
}

func cloudEventByTime(r *http.Request) (string, revguard.Revision, error) {
	return readCloudEvent(r, true)
}

func readCloudEvent(r *http.Request, byTime bool) (string, revguard.Revision, error) {
	switch mediaType(r.Header.Get("Content-Type")) {
	case "application/cloudevents+json":
		return structuredEvent(r, byTime)
	case "application/cloudevents-batch+json":
		return "", 0, &FieldError{Field: `header "Content-Type"`, Reason: "batched CloudEvents are not supported: send one event per request"}
	}
	return binaryEvent(r, byTime)
}

func binaryEvent(r *http.Request, byTime bool) (string, revguard.Revision, error) {
	source, ok, err := ceHeader(r.Header, "Ce-Source", "ce-source", revguard.ErrInvalidKey)
	if err != nil {
		return "", 0, err
	}
	if !ok || source == "" {
		return "", 0, &FieldError{Field: `header "ce-source"`, Reason: "missing", Err: revguard.ErrInvalidKey}
	}
	subject, hasSubject, err := ceHeader(r.Header, "Ce-Subject", "ce-subject", revguard.ErrInvalidKey)
	if err != nil {
		return "", 0, err
	}
	key, err := CloudEventKey(`header "ce-source"`, source, `header "ce-subject"`, optional(subject, hasSubject))
	if err != nil {
		return "", 0, err
	}
	if seq, ok, err := single(r.Header, "Ce-Sequence", `header "ce-sequence"`, revguard.ErrInvalidRevision); err != nil && !byTime {
		return "", 0, err
	} else if ok && !byTime {
		rev, err := CloudEventSequence(`header "ce-sequence"`, seq)
		return key, rev, err
	}
	t, ok, err := single(r.Header, "Ce-Time", `header "ce-time"`, revguard.ErrInvalidRevision)
	if err != nil {
		return "", 0, err
	}
	if !ok && byTime {
		return "", 0, &FieldError{Field: `header "ce-time"`, Reason: "missing: it is the revision", Err: revguard.ErrInvalidRevision}
	}
	if !ok {
		return "", 0, &FieldError{Field: `headers "ce-sequence" and "ce-time"`, Reason: "both missing: one of them is the revision", Err: revguard.ErrInvalidRevision}
	}
	rev, err := parseTime(settings(r), `header "ce-time"`, t)
	return key, rev, err
}

// ceHeader reads a string attribute, which the HTTP binding percent-encodes.
func ceHeader(h http.Header, name, attr string, sentinel error) (string, bool, error) {
	field := "header " + strconv.Quote(attr)
	v, ok, err := single(h, name, field, sentinel)
	if err != nil || !ok {
		return "", ok, err
	}
	if strings.IndexByte(v, '%') < 0 {
		return v, true, nil
	}
	d, err := url.PathUnescape(v)
	if err != nil {
		return "", true, &FieldError{Field: field, Reason: "bad percent-encoding: " + text.Quote(v), Err: sentinel}
	}
	return d, true, nil
}

var cloudEventPaths = []jsonPath{
	newPath("CloudEvents", "source", revguard.ErrInvalidKey),
	newPath("CloudEvents", "subject", revguard.ErrInvalidKey),
	newPath("CloudEvents", "sequence", revguard.ErrInvalidRevision),
	newPath("CloudEvents", "time", revguard.ErrInvalidRevision),
}

func structuredEvent(r *http.Request, byTime bool) (string, revguard.Revision, error) {
	doc, err := ReadBody(r)
	if err != nil {
		return "", 0, err
	}
	v, err := lookup(doc, cloudEventPaths)
	if err != nil {
		return "", 0, err
	}
	const fs, fsub, fseq, ft = `JSON field "source"`, `JSON field "subject"`, `JSON field "sequence"`, `JSON field "time"`
	if isNull(v[0]) {
		return "", 0, &FieldError{Field: fs, Reason: "missing", Err: revguard.ErrInvalidKey}
	}
	source, err := jsonString(fs, v[0], revguard.ErrInvalidKey)
	if err != nil {
		return "", 0, err
	}
	if source == "" {
		return "", 0, &FieldError{Field: fs, Reason: "empty", Err: revguard.ErrInvalidKey}
	}
	var subject string
	hasSubject := !isNull(v[1])
	if hasSubject {
		if subject, err = jsonString(fsub, v[1], revguard.ErrInvalidKey); err != nil {
			return "", 0, err
		}
	}
	key, err := CloudEventKey(fs, source, fsub, optional(subject, hasSubject))
	if err != nil {
		return "", 0, err
	}
	if !isNull(v[2]) && !byTime {
		if v[2][0] == '"' {
			s, err := jsonString(fseq, v[2], revguard.ErrInvalidRevision)
			if err != nil {
				return "", 0, err
			}
			rev, err := CloudEventSequence(fseq, s)
			return key, rev, err
		}
		rev, err := jsonCounter(fseq, v[2])
		return key, rev, err
	}
	if isNull(v[3]) && byTime {
		return "", 0, &FieldError{Field: ft, Reason: "missing: it is the revision", Err: revguard.ErrInvalidRevision}
	}
	if isNull(v[3]) {
		return "", 0, &FieldError{Field: `JSON fields "sequence" and "time"`, Reason: "both missing: one of them is the revision", Err: revguard.ErrInvalidRevision}
	}
	t, err := jsonString(ft, v[3], revguard.ErrInvalidRevision)
	if err != nil {
		return "", 0, err
	}
	rev, err := parseTime(settings(r), ft, t)
	return key, rev, err
}

// CloudEventKey returns the entity key [CloudEvents] gives an event:
// [revguard.Key](source, subject), or revguard.Key(source) when subject is nil
// (the attribute is absent), so that no two (source, subject) pairs share a
// key and a source alone differs from every pair. sourceField and
// subjectField name the attributes in its errors, such as `header
// "ce-source"`. Adapters for other CloudEvents bindings
// (contrib/revcloudevents) call it so that one event gets one key whichever
// way it arrives.
func CloudEventKey(sourceField, source, subjectField string, subject *string) (string, error) {
	if source == "" {
		return "", &FieldError{Field: sourceField, Reason: "missing", Err: revguard.ErrInvalidKey}
	}
	if err := checkPart(sourceField, source); err != nil {
		return "", err
	}
	if subject == nil {
		return revguard.Key(source), nil
	}
	if *subject == "" {
		return "", &FieldError{Field: subjectField, Reason: "present but empty, which CloudEvents forbids", Err: revguard.ErrInvalidKey}
	}
	if err := checkPart(subjectField, *subject); err != nil {
		return "", err
	}
	return revguard.Key(source, *subject), nil
}

// CloudEventSequence reads a sequence attribute as the middleware does: a
// decimal counter over the whole uint64 range, nothing else.
func CloudEventSequence(field, s string) (revguard.Revision, error) {
	if s == "" || !text.AllDigits(s) {
		return 0, &FieldError{Field: field, Reason: text.Quote(s) + " is not a decimal counter (zero-padded digits are); " +
			"order such events by time with CloudEventsByTime, or map the sequence to a counter in an Extractor of your own", Err: revguard.ErrInvalidRevision}
	}
	return parseCounter(field, s)
}

// CloudEventTime reads a time attribute as a revision in Unix nanoseconds,
// and refuses one more than maxSkew ahead of now (0: no bound), as the
// middleware does with [DefaultMaxFutureSkew] unless [WithMaxFutureSkew] says
// otherwise.
func CloudEventTime(field string, t, now time.Time, maxSkew time.Duration) (revguard.Revision, error) {
	rev, err := revguard.Timestamp(t)
	if err != nil {
		return 0, &FieldError{Field: field, Reason: reason(err, revguard.ErrInvalidRevision), Err: revguard.ErrInvalidRevision}
	}
	return rev, checkFuture(field, t.Format(time.RFC3339Nano), rev, now, maxSkew)
}

// JSONFields returns an extractor that reads the entity key and the revision
// from a JSON object body, at dotted member paths such as "data.object.id".
// The key may be a string or an integer. The revision may be an integer,
// read exactly over the whole uint64 range, or a string that
// [revguard.ParseRevision] reads (a decimal counter or an RFC 3339 timestamp).
// The body is read once, under the size limit, and the inner handler then
// reads it intact. A member named twice along a path is refused, since
// parsers differ on which one wins. Member names containing a dot cannot be
// addressed. It panics if a path is empty or has an empty segment.
func JSONFields(keyField, revisionField string) revguard.Extractor[*http.Request] {
	paths := []jsonPath{
		newPath("JSONFields", keyField, revguard.ErrInvalidKey),
		newPath("JSONFields", revisionField, revguard.ErrInvalidRevision),
	}
	kf, rf := paths[0].field, paths[1].field
	return func(r *http.Request) (string, revguard.Revision, error) {
		key, v, err := bodyKey(r, paths, kf)
		if err != nil {
			return "", 0, err
		}
		if isNull(v[1]) {
			return "", 0, &FieldError{Field: rf, Reason: "missing", Err: revguard.ErrInvalidRevision}
		}
		rev, err := jsonRevision(settings(r), rf, v[1])
		return key, rev, err
	}
}

// bodyKey reads the JSON body's values at paths, and the key at the first,
// which must be there.
func bodyKey(r *http.Request, paths []jsonPath, field string) (string, []json.RawMessage, error) {
	doc, err := ReadBody(r)
	if err != nil {
		return "", nil, err
	}
	v, err := lookup(doc, paths)
	if err != nil {
		return "", nil, err
	}
	if isNull(v[0]) {
		return "", nil, &FieldError{Field: field, Reason: "missing", Err: revguard.ErrInvalidKey}
	}
	key, err := jsonKey(field, v[0])
	return key, v, err
}

// single returns the one value of header name; several values that differ
// are refused, since the sender's intent is then unknown.
func single(h http.Header, name, field string, sentinel error) (string, bool, error) {
	vs := h[name]
	if len(vs) == 0 {
		return "", false, nil
	}
	for _, v := range vs[1:] {
		if v != vs[0] {
			return "", true, &FieldError{Field: field, Reason: fmt.Sprintf("sent %d times with different values", len(vs)), Err: sentinel}
		}
	}
	return vs[0], true, nil
}

func checkKey(field, key string) error {
	if err := revguard.CheckKey(key); err != nil {
		return &FieldError{Field: field, Reason: reason(err, revguard.ErrInvalidKey), Err: revguard.ErrInvalidKey}
	}
	return nil
}

// checkPart checks a field that revguard.Key makes part of a key: any
// length will do, since Key hashes long keys, but not invalid UTF-8.
func checkPart(field, s string) error {
	if !utf8.ValidString(s) {
		return &FieldError{Field: field, Reason: text.Quote(s) + " is not valid UTF-8", Err: revguard.ErrInvalidKey}
	}
	return nil
}

// parseRevision reads a counter or a timestamp, and holds timestamps to the
// future skew bound.
func parseRevision(cfg *config, field, s string) (revguard.Revision, error) {
	if err := cfg.revisionKind(field, s, text.AllDigits(s) && s != ""); err != nil {
		return 0, err
	}
	rev, err := revguard.ParseRevision(s)
	if err != nil {
		return 0, &FieldError{Field: field, Reason: reason(err, revguard.ErrInvalidRevision), Err: revguard.ErrInvalidRevision}
	}
	// ParseRevision reads digits as a counter and anything else it accepts
	// as a timestamp.
	if !text.AllDigits(s) {
		return rev, checkFuture(field, s, rev, cfg.now(), cfg.skew)
	}
	return rev, nil
}

func parseCounter(field, s string) (revguard.Revision, error) {
	if !text.AllDigits(s) || s == "" {
		return 0, &FieldError{Field: field, Reason: text.Quote(s) + " is not a decimal integer", Err: revguard.ErrInvalidRevision}
	}
	rev, err := revguard.ParseRevision(s)
	if err != nil {
		return 0, &FieldError{Field: field, Reason: reason(err, revguard.ErrInvalidRevision), Err: revguard.ErrInvalidRevision}
	}
	return rev, nil
}

func parseTime(cfg *config, field, s string) (revguard.Revision, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, &FieldError{Field: field, Reason: text.Quote(s) + " is not an RFC 3339 timestamp", Err: revguard.ErrInvalidRevision}
	}
	rev, err := revguard.Timestamp(t)
	if err != nil {
		return 0, &FieldError{Field: field, Reason: reason(err, revguard.ErrInvalidRevision), Err: revguard.ErrInvalidRevision}
	}
	return rev, checkFuture(field, s, rev, cfg.now(), cfg.skew)
}

// checkFuture refuses a timestamp revision beyond now plus skew (0: no
// bound): a single event stamped in the year 2500 would otherwise make
// every later event of its entity stale. s is the timestamp as sent.
func checkFuture(field, s string, rev revguard.Revision, now time.Time, skew time.Duration) error {
	if skew <= 0 { // WithMaxFutureSkew refuses a negative one
		return nil
	}
	nowRev, err := revguard.Timestamp(now)
	if err != nil {
		return nil // a clock before 1970 bounds nothing
	}
	limit := uint64(nowRev) + uint64(skew)
	if limit < uint64(nowRev) || uint64(rev) <= limit {
		return nil
	}
	return &FieldError{
		Field:  field,
		Reason: fmt.Sprintf("%s is more than %s ahead of the receiver's clock", text.Quote(s), skew),
		Err:    revguard.ErrInvalidRevision,
	}
}

// optional returns a pointer to s when present, for CloudEventKey.
func optional(s string, present bool) *string {
	if !present {
		return nil
	}
	return &s
}

// revisionKind refuses a revision of the kind WithRevisions rules out.
func (cfg *config) revisionKind(field, s string, counter bool) error {
	switch {
	case cfg.revisions == Counters && !counter:
		return &FieldError{Field: field, Reason: text.Quote(s) + " is not a decimal counter, and this endpoint takes counters only (WithRevisions)", Err: revguard.ErrInvalidRevision}
	case cfg.revisions == Timestamps && counter:
		return &FieldError{Field: field, Reason: text.Quote(s) + " is a counter, and this endpoint takes RFC 3339 timestamps only (WithRevisions)", Err: revguard.ErrInvalidRevision}
	}
	return nil
}

// reason is err's message without the sentinel's own, which FieldError
// puts back in front.
func reason(err, sentinel error) string {
	return strings.TrimPrefix(err.Error(), sentinel.Error()+": ")
}

// mediaType returns the media type of a Content-Type value, lower case,
// without parameters.
func mediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(ct)
	for i := 0; i < len(ct); i++ {
		if c := ct[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(ct)
		}
	}
	return ct
}

func checkHeaderName(fn, name string) {
	if name == "" {
		panic(fmt.Sprintf("middleware.%s: empty header name", fn))
	}
	for i := 0; i < len(name); i++ {
		if !isTokenChar(name[i]) {
			panic(fmt.Sprintf("middleware.%s: %q is not a valid header name", fn, name))
		}
	}
}

// isTokenChar reports whether c may appear in an HTTP token (RFC 9110 5.6.2).
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
