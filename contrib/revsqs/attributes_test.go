package revsqs_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/revguard/revguard"
	"github.com/revguard/revguard/contrib/revsqs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAttributes(t *testing.T) {
	extract := revsqs.Attributes("entity", "revision")

	key, rev, err := extract(message(standardARN, "1", "order:42", "17"))
	require.NoError(t, err)
	assert.Equal(t, "order:42", key)
	assert.Equal(t, revguard.Revision(17), rev)

	_, rev, err = extract(message(standardARN, "1", "order:42", "2026-11-23T09:00:00.5Z"))
	require.NoError(t, err)
	assert.Equal(t, "1795424400500000000", rev.String())

	binary := message(standardARN, "1", "order:42", "1")
	binary.MessageAttributes["revision"] = events.SQSMessageAttribute{BinaryValue: []byte{1}, DataType: "Binary"}
	noRev := message(standardARN, "1", "order:42", "1")
	delete(noRev.MessageAttributes, "revision")

	for _, c := range []struct {
		name string
		msg  events.SQSMessage
		is   error
		says string
	}{
		{"no attributes", events.SQSMessage{}, revguard.ErrInvalidKey, `message attribute "entity" is missing`},
		{"empty key", message(standardARN, "1", "", "1"), revguard.ErrInvalidKey, `message attribute "entity": revguard: invalid key: empty`},
		{"long key", message(standardARN, "1", strings.Repeat("k", revguard.MaxKeyLen+1), "1"), revguard.ErrInvalidKey, `message attribute "entity"`},
		{"no revision", noRev, revguard.ErrInvalidRevision, `message attribute "revision" is missing`},
		{"binary revision", binary, revguard.ErrInvalidRevision, `message attribute "revision" has data type "Binary" and no string value`},
		{"fraction", message(standardARN, "1", "k", "1.5"), revguard.ErrInvalidRevision, `message attribute "revision": revguard: invalid revision: "1.5"`},
		{"too large", message(standardARN, "1", "k", "18446744073709551616"), revguard.ErrInvalidRevision, `"18446744073709551616" is above the largest revision`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := extract(c.msg)
			assert.ErrorIs(t, err, c.is)
			assert.ErrorContains(t, err, c.says)
		})
	}

	assert.Panics(t, func() { revsqs.Attributes("", "revision") })
	assert.Panics(t, func() { revsqs.Attributes("entity", "") })
}
