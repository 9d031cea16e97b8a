package middleware

import (
	"net/http"
	"strconv"

	"github.com/revguard/revguard"
)

// The ID-only pattern: a sender that gives each message an ID, the same on
// every retry, and no revision. The ID is the key and every message is
// revision 1, so the guard applies the first delivery of each message and
// answers every later copy as a Duplicate; a copy that arrives while the
// first is being handled gets 409 and comes back. Nothing is ordered: use
// it where messages are independent. The store keeps one record per
// message, so give the guard a namespace of its own
// (revguard.WithNamespace) and, in Redis, a TTL beyond the sender's retry
// window (redisstore.WithTTL).

// IDHeader returns an extractor for the ID-only pattern keyed by the header
// name, such as X-GitHub-Delivery or Idempotency-Key: the key is the
// header's value and the revision is always 1. A missing or empty header is
// refused. It panics if name is not a valid header name.
func IDHeader(name string) revguard.Extractor[*http.Request] {
	checkHeaderName("IDHeader", name)
	h, field := http.CanonicalHeaderKey(name), "header "+strconv.Quote(name)
	return func(r *http.Request) (string, revguard.Revision, error) { return idHeader(r, h, field) }
}

func idHeader(r *http.Request, h, field string) (string, revguard.Revision, error) {
	key, ok, err := single(r.Header, h, field, revguard.ErrInvalidKey)
	if err != nil {
		return "", 0, err
	}
	if !ok {
		return "", 0, &FieldError{Field: field, Reason: "missing", Err: revguard.ErrInvalidKey}
	}
	if err := checkKey(field, key); err != nil {
		return "", 0, err
	}
	return key, 1, nil
}

// IDField returns an extractor for the ID-only pattern keyed by a JSON
// body field, at a dotted path as [JSONFields] reads it, such as a Stripe
// event's "id": the key is the field's value (a string or an integer) and
// the revision is always 1.
//
// For Stripe, key by the event id rather than by the object's id with the
// event's created as the revision: created has a grain of one second, so
// two events of one object in the same second would look like one, and the
// second would be dropped. Where the order of an object's events matters,
// use a revision the application sets (a version in the object's metadata)
// with JSONFields.
func IDField(path string) revguard.Extractor[*http.Request] {
	paths := []jsonPath{newPath("IDField", path, revguard.ErrInvalidKey)}
	field := paths[0].field
	return func(r *http.Request) (string, revguard.Revision, error) {
		key, _, err := bodyKey(r, paths, field)
		if err != nil {
			return "", 0, err
		}
		return key, 1, nil
	}
}
