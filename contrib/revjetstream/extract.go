package revjetstream

import (
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/revguard/revguard"
	"github.com/revguard/revguard/internal/text"
)

// The headers a publisher sets for [Headers]([KeyHeader], RevisionHeader). They
// name the event's own data rather than this package, and they are the ones
// the HTTP examples use, so one producer can write the same pair to a
// webhook and to a subject.
const (
	KeyHeader      = "Event-Key"      // the entity key, such as "product:42"
	RevisionHeader = "Event-Revision" // a decimal counter or an RFC 3339 timestamp
)

// Headers returns an extractor that reads the entity key from the header
// keyHeader and the revision from the header revisionHeader, as
// [revguard.ParseRevision] reads it (a decimal counter or an RFC 3339
// timestamp). NATS header names are case-sensitive. A missing header, or one
// set several times to different values, is refused with an error wrapping
// [revguard.ErrInvalidKey] or [revguard.ErrInvalidRevision] that names the
// header and quotes its value; [Handle] then terminates the message.
//
// Do not read the revision from Nats-Msg-Id: see the package documentation.
// It panics if a name is empty.
func Headers(keyHeader, revisionHeader string) revguard.Extractor[jetstream.Msg] {
	if keyHeader == "" || revisionHeader == "" {
		panic(fmt.Sprintf("revjetstream: Headers(%q, %q): want two header names", keyHeader, revisionHeader))
	}
	return func(msg jetstream.Msg) (string, revguard.Revision, error) {
		key, err := header(msg, keyHeader, revguard.ErrInvalidKey)
		if err == nil {
			err = checkKey("header "+text.Quote(keyHeader), key)
		}
		if err != nil {
			return "", 0, err
		}
		rev, err := revision(msg, revisionHeader)
		return key, rev, err
	}
}

// Subject returns an extractor whose entity key is the message's whole
// subject, for streams that publish each entity on a subject of its own
// ("prices.eu.p42"), and whose revision is read from the header
// revisionHeader as [Headers] reads it. It panics if the name is empty.
func Subject(revisionHeader string) revguard.Extractor[jetstream.Msg] {
	if revisionHeader == "" {
		panic("revjetstream: Subject(\"\"): want a header name")
	}
	return func(msg jetstream.Msg) (string, revguard.Revision, error) {
		key := msg.Subject()
		if err := checkKey("subject", key); err != nil {
			return "", 0, err
		}
		rev, err := revision(msg, revisionHeader)
		return key, rev, err
	}
}

func revision(msg jetstream.Msg, name string) (revguard.Revision, error) {
	v, err := header(msg, name, revguard.ErrInvalidRevision)
	if err != nil {
		return 0, err
	}
	rev, err := revguard.ParseRevision(v)
	if err != nil {
		return 0, fmt.Errorf("header %s: %w", text.Quote(name), err)
	}
	return rev, nil
}

// header returns the value of the header name, or an error wrapping
// invalid if it is missing or has several different values.
func header(msg jetstream.Msg, name string, invalid error) (string, error) {
	vs := msg.Headers()[name]
	if len(vs) == 0 {
		return "", fmt.Errorf("%w: header %s missing", invalid, text.Quote(name))
	}
	for _, v := range vs[1:] {
		if v != vs[0] {
			return "", fmt.Errorf("%w: header %s set to %s and %s", invalid, text.Quote(name), text.Quote(vs[0]), text.Quote(v))
		}
	}
	return vs[0], nil
}

func checkKey(field, key string) error {
	if err := revguard.CheckKey(key); err != nil {
		return fmt.Errorf("%s %s: %w", field, text.Quote(key), err)
	}
	return nil
}
