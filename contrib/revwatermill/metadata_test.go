package revwatermill_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/revguard/revguard"
	"github.com/revguard/revguard/contrib/revwatermill"
	"github.com/stretchr/testify/assert"
)

func TestMetadata(t *testing.T) {
	extract := revwatermill.Metadata("id", "version")
	stamp, err := revguard.Timestamp(time.Date(2026, 11, 23, 9, 0, 0, 500_000_000, time.UTC))
	assert.NoError(t, err)
	for _, tc := range []struct {
		name     string
		metadata message.Metadata
		key      string
		rev      revguard.Revision
		is       error
		msg      string
	}{
		{"counter", message.Metadata{"id": "order:42", "version": "7"}, "order:42", 7, nil, ""},
		{"timestamp", message.Metadata{"id": "k", "version": "2026-11-23T09:00:00.5Z"}, "k", stamp, nil, ""},
		{"largest", message.Metadata{"id": "k", "version": "18446744073709551615"}, "k", 1<<64 - 1, nil, ""},
		{"no metadata", nil, "", 0, revguard.ErrInvalidKey, `revguard: invalid key: metadata "id": missing`},
		{"empty key", message.Metadata{"id": "", "version": "1"}, "", 0, revguard.ErrInvalidKey, `revguard: invalid key: metadata "id": empty`},
		{"key not UTF-8", message.Metadata{"id": "\xff", "version": "1"}, "", 0, revguard.ErrInvalidKey,
			`revguard: invalid key: metadata "id": "\xff" is not valid UTF-8`},
		{"key too long", message.Metadata{"id": strings.Repeat("k", revguard.MaxKeyLen+1), "version": "1"}, "", 0, revguard.ErrInvalidKey,
			`revguard: invalid key: metadata "id": 4097 bytes, above the limit of 4096`},
		{"no revision", message.Metadata{"id": "k"}, "", 0, revguard.ErrInvalidRevision, `revguard: invalid revision: metadata "version": missing`},
		{"empty revision", message.Metadata{"id": "k", "version": ""}, "", 0, revguard.ErrInvalidRevision,
			`revguard: invalid revision: metadata "version": empty string`},
		{"revision overflows", message.Metadata{"id": "k", "version": "18446744073709551616"}, "", 0, revguard.ErrInvalidRevision,
			`revguard: invalid revision: metadata "version": "18446744073709551616" is above the largest revision 18446744073709551615`},
		{"fraction", message.Metadata{"id": "k", "version": "1.5"}, "", 0, revguard.ErrInvalidRevision,
			`revguard: invalid revision: metadata "version": "1.5" is neither a decimal integer nor an RFC 3339 timestamp`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := message.NewMessage("uuid", nil)
			msg.Metadata = tc.metadata
			key, rev, err := extract(msg)
			if tc.is == nil {
				assert.NoError(t, err)
				assert.Equal(t, tc.key, key)
				assert.Equal(t, tc.rev, rev)
				return
			}
			assert.ErrorIs(t, err, tc.is)
			assert.EqualError(t, err, tc.msg)
		})
	}
}

func TestMetadataEmptyFieldName(t *testing.T) {
	assert.Panics(t, func() { revwatermill.Metadata("", "rev") })
	assert.Panics(t, func() { revwatermill.Metadata("key", "") })
}
