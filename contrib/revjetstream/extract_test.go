package revjetstream_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/contrib/revjetstream"
)

func TestHeaders(t *testing.T) {
	extract := revjetstream.Headers(revjetstream.KeyHeader, revjetstream.RevisionHeader)

	key, rev, err := extract(newFakeMsg("product:42", "7"))
	require.NoError(t, err)
	assert.Equal(t, "product:42", key)
	assert.Equal(t, revguard.Revision(7), rev)

	_, rev, err = extract(newFakeMsg("product:42", "2026-11-23T09:00:00.5Z"))
	require.NoError(t, err)
	want, _ := revguard.ParseRevision("2026-11-23T09:00:00.5Z")
	assert.Equal(t, want, rev, "an RFC 3339 revision is read as a timestamp")

	repeated := newFakeMsg("product:42", "7")
	repeated.header.Add(revjetstream.RevisionHeader, "7")
	_, rev, err = extract(repeated)
	require.NoError(t, err, "a header repeated with one value")
	assert.Equal(t, revguard.Revision(7), rev)

	lower := newFakeMsg("", "7")
	lower.header.Set("event-key", "product:42")

	emptyKey := newFakeMsg("", "7")
	emptyKey.header[revjetstream.KeyHeader] = []string{""}

	contradicting := newFakeMsg("product:42", "7")
	contradicting.header.Add(revjetstream.RevisionHeader, "8")

	for _, tc := range []struct {
		name string
		msg  *fakeMsg
		is   error
		says []string // what the error names
	}{
		{"no key header", newFakeMsg("", "7"), revguard.ErrInvalidKey, []string{`"Event-Key"`, "missing"}},
		{"header names are case-sensitive", lower, revguard.ErrInvalidKey, []string{`"Event-Key"`, "missing"}},
		{"empty key", emptyKey, revguard.ErrInvalidKey, []string{`"Event-Key"`, "empty"}},
		{"no revision header", newFakeMsg("product:42", ""), revguard.ErrInvalidRevision, []string{`"Event-Revision"`, "missing"}},
		{"unparsable revision", newFakeMsg("product:42", "seven"), revguard.ErrInvalidRevision, []string{`"Event-Revision"`, `"seven"`}},
		{"negative revision", newFakeMsg("product:42", "-1"), revguard.ErrInvalidRevision, []string{`"Event-Revision"`, `"-1"`}},
		{"contradicting revisions", contradicting, revguard.ErrInvalidRevision, []string{`"Event-Revision"`, `"7"`, `"8"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := extract(tc.msg)
			require.ErrorIs(t, err, tc.is)
			for _, s := range tc.says {
				assert.Contains(t, err.Error(), s)
			}
		})
	}
}

func TestSubject(t *testing.T) {
	extract := revjetstream.Subject(revjetstream.RevisionHeader)
	msg := newFakeMsg("", "3")
	msg.subject = "prices.eu.p42"
	key, rev, err := extract(msg)
	require.NoError(t, err)
	assert.Equal(t, "prices.eu.p42", key)
	assert.Equal(t, revguard.Revision(3), rev)

	msg = newFakeMsg("", "x3")
	_, _, err = extract(msg)
	require.ErrorIs(t, err, revguard.ErrInvalidRevision)
	assert.Contains(t, err.Error(), `"x3"`)
}
