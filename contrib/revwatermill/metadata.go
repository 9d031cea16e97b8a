package revwatermill

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/revguard/revguard"
)

// The metadata fields a publisher sets for [Metadata]([KeyField],
// RevisionField).
const (
	KeyField      = "entity_key"
	RevisionField = "revision"
)

// Metadata returns an extractor that reads a message's entity key from its
// metadata field keyField and its revision from revisionField, as
// [revguard.ParseRevision] reads it (a decimal counter or an RFC 3339
// timestamp). A missing or invalid key is refused with an error wrapping
// [revguard.ErrInvalidKey], and a missing or unparsable revision with one
// wrapping [revguard.ErrInvalidRevision]; either names the field and quotes
// its value. It panics if a field name is empty.
func Metadata(keyField, revisionField string) revguard.Extractor[*message.Message] {
	if keyField == "" || revisionField == "" {
		panic(fmt.Sprintf("revwatermill: Metadata(%q, %q): a field name is empty", keyField, revisionField))
	}
	return func(msg *message.Message) (string, revguard.Revision, error) {
		key, ok := msg.Metadata[keyField]
		if !ok {
			return "", 0, fieldError(revguard.ErrInvalidKey, keyField, "missing")
		}
		if err := revguard.CheckKey(key); err != nil {
			return "", 0, fieldError(revguard.ErrInvalidKey, keyField, reason(err, revguard.ErrInvalidKey))
		}
		v, ok := msg.Metadata[revisionField]
		if !ok {
			return "", 0, fieldError(revguard.ErrInvalidRevision, revisionField, "missing")
		}
		rev, err := revguard.ParseRevision(v)
		if err != nil {
			return "", 0, fieldError(revguard.ErrInvalidRevision, revisionField, reason(err, revguard.ErrInvalidRevision))
		}
		return key, rev, nil
	}
}

// fieldError reads `revguard: invalid revision: metadata "revision": "x"
// is neither ...`, which is what watermill's poison queue records as the
// reason.
func fieldError(sentinel error, field, why string) error {
	return fmt.Errorf("%w: metadata %s: %s", sentinel, strconv.Quote(field), why)
}

// reason is err's message without the sentinel that fieldError puts first.
func reason(err, sentinel error) string {
	return strings.TrimPrefix(err.Error(), sentinel.Error()+": ")
}
