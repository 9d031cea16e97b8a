package revguard

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/revguard/revguard/internal/text"
)

// Revision orders the events of one entity. Counters are used as they are;
// timestamps are Unix nanoseconds (see [Timestamp]). Every backend orders the
// whole uint64 range exactly.
type Revision uint64

// String returns the revision in decimal, the form [ParseRevision] reads back.
func (r Revision) String() string { return strconv.FormatUint(uint64(r), 10) }

// Timestamp returns t as a revision: nanoseconds since the Unix epoch. Times
// before 1970 have no revision and times after the year 2554 overflow uint64;
// both return an error wrapping [ErrInvalidRevision].
func Timestamp(t time.Time) (Revision, error) {
	sec, nsec := t.Unix(), uint64(t.Nanosecond()) //nolint:gosec // G115: Nanosecond is in [0, 1e9)
	if sec < 0 {
		return 0, fmt.Errorf("%w: time %s is before 1970", ErrInvalidRevision, t.Format(time.RFC3339Nano))
	}
	if uint64(sec) > (math.MaxUint64-nsec)/1e9 {
		return 0, fmt.Errorf("%w: time %s does not fit in 64-bit nanoseconds", ErrInvalidRevision, t.Format(time.RFC3339Nano))
	}
	return Revision(uint64(sec)*1e9 + nsec), nil
}

// ParseRevision reads a revision written as a decimal integer ("42") or as an
// RFC 3339 timestamp ("2026-11-23T09:00:00.5Z", read as [Timestamp] does). It
// refuses signs, spaces, fractions, exponents and anything else with an error
// that wraps [ErrInvalidRevision] and quotes the input.
func ParseRevision(s string) (Revision, error) {
	if s == "" {
		return 0, fmt.Errorf("%w: empty string", ErrInvalidRevision)
	}
	if text.AllDigits(s) {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: %s is above the largest revision %d", ErrInvalidRevision, text.Quote(s), uint64(math.MaxUint64))
		}
		return Revision(n), nil
	}
	// Only a string shaped like a date is tried as one, so that "-5" or "1e9"
	// get the plain message rather than a time-parsing one.
	if len(s) >= 20 && s[4] == '-' && text.AllDigits(s[:4]) {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return 0, fmt.Errorf("%w: %s is not an RFC 3339 timestamp: %w", ErrInvalidRevision, text.Quote(s), err)
		}
		return Timestamp(t)
	}
	return 0, fmt.Errorf("%w: %s is neither a decimal integer nor an RFC 3339 timestamp", ErrInvalidRevision, text.Quote(s))
}

// Outcome is what the guard did with an event whose error was nil.
type Outcome uint8

const (
	Applied      Outcome = iota + 1 // the handler ran and its revision is now the applied one
	Duplicate                       // revision equal to the applied one: dropped
	Stale                           // revision below the applied one: dropped
	DeadLettered                    // the handler failed for good and WithDeadLetter took the event
)

// String returns the outcome in lower case ("applied", "duplicate", "stale",
// "dead-lettered"), the value of the middleware's Revision-Outcome header.
func (o Outcome) String() string {
	switch o {
	case Applied:
		return "applied"
	case Duplicate:
		return "duplicate"
	case Stale:
		return "stale"
	case DeadLettered:
		return "dead-lettered"
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

// The errors below are returned wrapped, with the key and revision in the
// message; test for them with errors.Is. Every one of them means: do not
// acknowledge the message ([ErrInvalidKey], [ErrInvalidRevision] and
// [ErrInvalidEvent] mean it will never succeed, so route it to a dead-letter
// queue).
var (
	// ErrInvalidKey: the entity key is empty, longer than MaxKeyLen, or not UTF-8.
	ErrInvalidKey = errors.New("revguard: invalid key")
	// ErrInvalidRevision: the revision could not be parsed or was refused by
	// WithMaxFutureSkew or WithMaxStep.
	ErrInvalidRevision = errors.New("revguard: invalid revision")
	// ErrInvalidEvent: the Extractor failed for a reason of its own.
	ErrInvalidEvent = errors.New("revguard: invalid event")
	// ErrInFlight: another delivery of this entity holds the claim. Retry later.
	ErrInFlight = errors.New("revguard: another delivery of this entity is in flight")
	// ErrGap: under Sequential ordering the revision skips ahead of applied+1.
	// Retry later, once the missing revisions have been applied.
	ErrGap = errors.New("revguard: revision gap")
	// ErrLeaseLost: the claim expired or was taken while the handler ran; the
	// revision was not recorded, so the redelivery runs the handler again.
	ErrLeaseLost = errors.New("revguard: lease lost")
)

// MaxKeyLen is the longest entity key, in bytes, that every store accepts.
const MaxKeyLen = 4096

// CheckKey returns nil if key is a valid entity key and otherwise an error
// wrapping [ErrInvalidKey] that says what is wrong with it.
func CheckKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	case len(key) > MaxKeyLen:
		return fmt.Errorf("%w: %d bytes, above the limit of %d", ErrInvalidKey, len(key), MaxKeyLen)
	case !utf8.ValidString(key):
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalidKey, text.Quote(key))
	}
	return nil
}

// keyMax is the length Key never exceeds; longer compositions are hashed.
const keyMax = 256

// Key joins several fields into one entity key, so that distinct field lists
// give distinct keys: Key("order", "42") is "order:42", a colon or backslash
// inside a field is escaped with a backslash, and an empty field is written
// `\_`. A key that would be longer than 256 bytes is cut and completed with
// `\#` and the SHA-256 of the whole, which no short key contains.
func Key(parts ...string) string {
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteByte(':')
		}
		if p == "" {
			b.WriteString(`\_`)
			continue
		}
		for j := 0; j < len(p); j++ {
			if c := p[j]; c == ':' || c == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(p[j])
		}
	}
	k := b.String()
	if len(k) <= keyMax {
		return k
	}
	sum := sha256.Sum256([]byte(k))
	cut := keyMax - 2 - 2*sha256.Size
	for cut > 0 && !utf8.RuneStart(k[cut]) {
		cut--
	}
	// Never split an escape: `\#` must read as the marker, not as an escaped
	// backslash followed by '#'.
	if n := len(k[:cut]) - len(strings.TrimRight(k[:cut], `\`)); n%2 == 1 {
		cut--
	}
	return k[:cut] + `\#` + hex.EncodeToString(sum[:])
}
