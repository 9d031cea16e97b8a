package revcloudevents

import (
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/revguard/revguard"
	"github.com/revguard/revguard/middleware"
)

// Extractor returns an extractor that reads a CloudEvent's entity key and
// revision by the rules of [middleware.CloudEvents], so that one event gets
// the same key and revision through the SDK and through the HTTP
// middleware:
//
//   - the key is [revguard.Key](source, subject), or revguard.Key(source)
//     when the event has no subject;
//   - the revision is the sequence extension, a decimal counter (a string,
//     or an integer as structured JSON may carry it), or else the time
//     attribute, as Unix nanoseconds, refused when it lies more than
//     [middleware.DefaultMaxFutureSkew] ahead of the clock.
//
// Its errors are *[middleware.FieldError] values that name the attribute and
// wrap [revguard.ErrInvalidKey] or [revguard.ErrInvalidRevision].
func Extractor() revguard.Extractor[event.Event] { return extract }

// ExtractorByTime is [Extractor] ordered by the time attribute alone, as
// [middleware.CloudEventsByTime]: the sequence extension is ignored, for
// producers whose sequence is not a decimal counter.
func ExtractorByTime() revguard.Extractor[event.Event] { return extractByTime }

func extract(e event.Event) (string, revguard.Revision, error) { return read(e, false) }

func extractByTime(e event.Event) (string, revguard.Revision, error) { return read(e, true) }

const (
	fieldSource   = `attribute "source"`
	fieldSubject  = `attribute "subject"`
	fieldSequence = `extension "sequence"`
	fieldTime     = `attribute "time"`
)

func read(e event.Event, byTime bool) (string, revguard.Revision, error) {
	if e.Context == nil {
		return "", 0, &middleware.FieldError{Reason: "the event has no context attributes"}
	}
	key, err := middleware.CloudEventKey(fieldSource, e.Source(), fieldSubject, subject(e))
	if err != nil {
		return "", 0, err
	}
	if seq, ok := e.Extensions()["sequence"]; ok && !byTime {
		rev, err := sequence(seq)
		return key, rev, err
	}
	if t := e.Time(); !t.IsZero() {
		rev, err := middleware.CloudEventTime(fieldTime, t, time.Now(), middleware.DefaultMaxFutureSkew)
		return key, rev, err
	}
	return "", 0, &middleware.FieldError{Field: `extension "sequence" and attribute "time"`, Reason: "both missing: one of them is the revision", Err: revguard.ErrInvalidRevision}
}

// subject returns the event's subject, nil when it has none: an empty
// subject is refused, not read as an absent one.
func subject(e event.Event) *string {
	switch c := e.Context.(type) {
	case *event.EventContextV1:
		return c.Subject
	case *event.EventContextV03:
		return c.Subject
	}
	if s := e.Subject(); s != "" {
		return &s
	}
	return nil
}

// sequence reads the sequence extension: a string in binary mode and in
// structured JSON as the extension defines it, an int32 where structured
// JSON carries a number (the SDK refuses one beyond int32).
func sequence(v any) (revguard.Revision, error) {
	switch v := v.(type) {
	case string:
		return middleware.CloudEventSequence(fieldSequence, v)
	case int32:
		return middleware.CloudEventSequence(fieldSequence, fmt.Sprint(v))
	}
	return 0, &middleware.FieldError{Field: fieldSequence, Reason: fmt.Sprintf("a %T, not a decimal integer", v), Err: revguard.ErrInvalidRevision}
}
