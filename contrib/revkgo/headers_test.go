package revkgo_test

import (
	"strings"
	"testing"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/contrib/revkgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestHeaders(t *testing.T) {
	t.Parallel()
	hdr := func(kv ...string) []kgo.RecordHeader {
		var hs []kgo.RecordHeader
		for i := 0; i < len(kv); i += 2 {
			hs = append(hs, kgo.RecordHeader{Key: kv[i], Value: []byte(kv[i+1])})
		}
		return hs
	}
	byKey, byHeader := revkgo.Headers("", "rev"), revkgo.Headers("entity", "rev")
	stamp, err := revguard.ParseRevision("2026-11-23T09:00:00.5Z")
	require.NoError(t, err)

	for _, tc := range []struct {
		name    string
		extract revguard.Extractor[*kgo.Record]
		rec     *kgo.Record
		key     string
		rev     revguard.Revision
		err     error
		msg     string
	}{
		{name: "record key", extract: byKey, rec: &kgo.Record{Key: []byte("p:1"), Headers: hdr("rev", "7")}, key: "p:1", rev: 7},
		{name: "key header", extract: byHeader, rec: &kgo.Record{Key: []byte("ignored"), Headers: hdr("entity", "p:2", "rev", "2026-11-23T09:00:00.5Z")}, key: "p:2", rev: stamp},
		{name: "last header counts", extract: byHeader, rec: &kgo.Record{Headers: hdr("entity", "old", "rev", "1", "entity", "p:3", "rev", "3")}, key: "p:3", rev: 3},
		{name: "no record key", extract: byKey, rec: &kgo.Record{Headers: hdr("rev", "1")}, err: revguard.ErrInvalidKey, msg: "no key"},
		{name: "empty record key", extract: byKey, rec: &kgo.Record{Key: []byte{}, Headers: hdr("rev", "1")}, err: revguard.ErrInvalidKey, msg: "record key"},
		{name: "no key header", extract: byHeader, rec: &kgo.Record{Key: []byte("k"), Headers: hdr("rev", "1")}, err: revguard.ErrInvalidKey, msg: `header "entity"`},
		{name: "key not UTF-8", extract: byHeader, rec: &kgo.Record{Headers: hdr("entity", "\xff", "rev", "1")}, err: revguard.ErrInvalidKey, msg: `header "entity"`},
		{name: "key too long", extract: byHeader, rec: &kgo.Record{Headers: hdr("entity", strings.Repeat("k", revguard.MaxKeyLen+1), "rev", "1")}, err: revguard.ErrInvalidKey},
		{name: "no revision header", extract: byKey, rec: &kgo.Record{Key: []byte("k")}, err: revguard.ErrInvalidRevision, msg: `header "rev"`},
		{name: "unparsable revision", extract: byKey, rec: &kgo.Record{Key: []byte("k"), Headers: hdr("rev", "-5")}, err: revguard.ErrInvalidRevision, msg: `header "rev": revguard: invalid revision: "-5"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key, rev, err := tc.extract(tc.rec)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				assert.ErrorContains(t, err, tc.msg)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.key, key)
			assert.Equal(t, tc.rev, rev)
		})
	}
	assert.Panics(t, func() { revkgo.Headers("entity", "") })
}
