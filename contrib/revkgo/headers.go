package revkgo

import (
	"fmt"

	"github.com/revguard/revguard"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Headers returns an extractor that reads the entity key from the record
// header keyHeader, or from the record's key if keyHeader is "", and the
// revision from the header revisionHeader, a decimal integer or an RFC 3339
// timestamp (see [revguard.ParseRevision]). Of repeated headers the last one
// counts. A missing or invalid key is an error wrapping
// [revguard.ErrInvalidKey], a missing or unparsable revision one wrapping
// [revguard.ErrInvalidRevision]; both name the header and quote the value.
//
// The revision must come from the producer: a record's topic, partition
// and offset name one copy of a message in the log, not the event it
// carries, so a re-sent event gets a new offset (see the package
// documentation). Headers panics if revisionHeader is "".
func Headers(keyHeader, revisionHeader string) revguard.Extractor[*kgo.Record] {
	if revisionHeader == "" {
		panic("revkgo: Headers needs a revision header")
	}
	return func(r *kgo.Record) (string, revguard.Revision, error) {
		key, err := recordKey(r, keyHeader)
		if err != nil {
			return "", 0, err
		}
		v, ok := header(r, revisionHeader)
		if !ok {
			return key, 0, fmt.Errorf("%w: the record has no header %q", revguard.ErrInvalidRevision, revisionHeader)
		}
		rev, err := revguard.ParseRevision(v)
		if err != nil {
			return key, 0, fmt.Errorf("revkgo: header %q: %w", revisionHeader, err)
		}
		return key, rev, nil
	}
}

func recordKey(r *kgo.Record, keyHeader string) (string, error) {
	if keyHeader == "" {
		if r.Key == nil {
			return "", fmt.Errorf("%w: the record has no key", revguard.ErrInvalidKey)
		}
		if err := revguard.CheckKey(string(r.Key)); err != nil {
			return "", fmt.Errorf("revkgo: record key: %w", err)
		}
		return string(r.Key), nil
	}
	key, ok := header(r, keyHeader)
	if !ok {
		return "", fmt.Errorf("%w: the record has no header %q", revguard.ErrInvalidKey, keyHeader)
	}
	if err := revguard.CheckKey(key); err != nil {
		return "", fmt.Errorf("revkgo: header %q: %w", keyHeader, err)
	}
	return key, nil
}

// header returns the value of the last header named name.
func header(r *kgo.Record, name string) (string, bool) {
	for i := len(r.Headers) - 1; i >= 0; i-- {
		if r.Headers[i].Key == name {
			return string(r.Headers[i].Value), true
		}
	}
	return "", false
}
