package revsqs

import (
	"fmt"

	"github.com/aws/aws-lambda-go/events"
	"github.com/revguard/revguard"
)

// Attributes returns an extractor that reads the entity key from the
// message attribute keyAttr and the revision from the message attribute
// revisionAttr, as [revguard.ParseRevision] reads it (a decimal counter or an
// RFC 3339 timestamp). Both must be String or Number attributes. A missing
// or unusable attribute gives an error wrapping [revguard.ErrInvalidKey] or
// [revguard.ErrInvalidRevision] that names the attribute and says what is
// wrong with its value.
// It panics if a name is empty.
func Attributes(keyAttr, revisionAttr string) revguard.Extractor[events.SQSMessage] {
	if keyAttr == "" || revisionAttr == "" {
		panic(fmt.Sprintf("revsqs.Attributes(%q, %q): empty attribute name", keyAttr, revisionAttr))
	}
	return func(m events.SQSMessage) (string, revguard.Revision, error) {
		key, err := attribute(m, keyAttr, revguard.ErrInvalidKey)
		if err != nil {
			return "", 0, err
		}
		if err := revguard.CheckKey(key); err != nil {
			return "", 0, fmt.Errorf("message attribute %q: %w", keyAttr, err)
		}
		v, err := attribute(m, revisionAttr, revguard.ErrInvalidRevision)
		if err != nil {
			return "", 0, err
		}
		rev, err := revguard.ParseRevision(v)
		if err != nil {
			return "", 0, fmt.Errorf("message attribute %q: %w", revisionAttr, err)
		}
		return key, rev, nil
	}
}

// attribute returns the string value of the message attribute name.
func attribute(m events.SQSMessage, name string, sentinel error) (string, error) {
	a, ok := m.MessageAttributes[name]
	switch {
	case !ok:
		return "", fmt.Errorf("%w: message attribute %q is missing", sentinel, name)
	case a.StringValue == nil:
		return "", fmt.Errorf("%w: message attribute %q has data type %q and no string value", sentinel, name, a.DataType)
	}
	return *a.StringValue, nil
}
