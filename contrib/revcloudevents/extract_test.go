package revcloudevents_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/revguard/revguard"
	"github.com/revguard/revguard/contrib/revcloudevents"
	"github.com/revguard/revguard/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// attrs are the attributes an extractor reads; nil means absent.
type attrs struct {
	source       string
	subject, seq *string
	time         string
}

func ptr(s string) *string { return &s }

// request is the event as a binary-mode HTTP request, for the middleware.
func (a attrs) request(t *testing.T) *http.Request {
	r, err := http.NewRequest(http.MethodPost, "http://receiver.example/", nil)
	require.NoError(t, err)
	r.Header.Set("Ce-Specversion", "1.0")
	r.Header.Set("Ce-Id", "1")
	r.Header.Set("Ce-Type", "com.example.price.changed")
	if a.source != "" {
		r.Header.Set("Ce-Source", a.source)
	}
	if a.subject != nil {
		r.Header["Ce-Subject"] = []string{*a.subject}
	}
	if a.seq != nil {
		r.Header["Ce-Sequence"] = []string{*a.seq}
	}
	if a.time != "" {
		r.Header.Set("Ce-Time", a.time)
	}
	return r
}

// event is the event as the SDK decodes it.
func (a attrs) event(t *testing.T) event.Event {
	ctx := &event.EventContextV1{ID: "1", Type: "com.example.price.changed", Subject: a.subject}
	if a.source != "" {
		ref := types.ParseURIRef(a.source)
		require.NotNil(t, ref, a.source)
		ctx.Source = *ref
	}
	if a.time != "" {
		at, err := time.Parse(time.RFC3339Nano, a.time)
		require.NoError(t, err)
		ctx.Time = &types.Timestamp{Time: at}
	}
	e := event.Event{Context: ctx}
	if a.seq != nil {
		require.NoError(t, e.Context.SetExtension("sequence", *a.seq))
	}
	return e
}

// Extractor gives an event the key, revision or error that
// middleware.CloudEvents gives it as an HTTP request.
func TestExtractorMatchesMiddleware(t *testing.T) {
	const src = "https://shop.example/prices"
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)
	for name, a := range map[string]attrs{
		"source only":           {source: src, seq: ptr("5")},
		"source and subject":    {source: src, subject: ptr("42"), seq: ptr("5")},
		"urn source":            {source: "urn:shop:prices", subject: ptr("42"), seq: ptr("5")},
		"subject to escape":     {source: src, subject: ptr(`a:b\c`), seq: ptr("5")},
		"long subject":          {source: src, subject: ptr(strings.Repeat("é", 3000)), seq: ptr("5")},
		"leading zeros":         {source: src, subject: ptr("42"), seq: ptr("007")},
		"largest sequence":      {source: src, subject: ptr("42"), seq: ptr("18446744073709551615")},
		"sequence over uint64":  {source: src, subject: ptr("42"), seq: ptr("18446744073709551616")},
		"sequence with a sign":  {source: src, subject: ptr("42"), seq: ptr("+1")},
		"negative sequence":     {source: src, subject: ptr("42"), seq: ptr("-1")},
		"fractional sequence":   {source: src, subject: ptr("42"), seq: ptr("1.0")},
		"word sequence":         {source: src, subject: ptr("42"), seq: ptr("v2")},
		"empty sequence":        {source: src, subject: ptr("42"), seq: ptr("")},
		"time":                  {source: src, subject: ptr("42"), time: "2026-11-23T09:00:00.5Z"},
		"time with an offset":   {source: src, subject: ptr("42"), time: "2026-11-23T11:00:00.123456789+02:00"},
		"sequence before time":  {source: src, subject: ptr("42"), seq: ptr("9"), time: "2026-11-23T09:00:00Z"},
		"time before 1970":      {source: src, subject: ptr("42"), time: "1969-07-20T20:17:00Z"},
		"time far ahead":        {source: src, subject: ptr("42"), time: future},
		"neither":               {source: src, subject: ptr("42")},
		"no source":             {subject: ptr("42"), seq: ptr("1")},
		"empty subject":         {source: src, subject: ptr(""), seq: ptr("1")},
		"subject not UTF-8":     {source: src, subject: ptr("a\xffb"), seq: ptr("1")},
		"bad revision, bad key": {subject: ptr("42"), seq: ptr("x")},
	} {
		t.Run(name, func(t *testing.T) {
			wantKey, wantRev, wantErr := middleware.CloudEvents()(a.request(t))
			key, rev, err := revcloudevents.Extractor()(a.event(t))
			if wantErr != nil {
				var fe *middleware.FieldError
				require.ErrorAs(t, err, &fe)
				assert.ErrorIs(t, err, errors.Unwrap(wantErr), "middleware: %v", wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, wantKey, key)
			assert.Equal(t, wantRev, rev)
		})
	}
}

// An event the SDK would never deliver, with no attributes at all, is
// refused as invalid, not a panic.
func TestExtractorZeroEvent(t *testing.T) {
	g := newGuard()
	ran := false
	_, err := g.Handle(context.Background(), event.Event{}, func(context.Context, event.Event) error {
		ran = true
		return nil
	})
	assert.ErrorIs(t, err, revguard.ErrInvalidEvent)
	assert.False(t, ran)
}

// Structured JSON may carry the sequence as a number, which the SDK
// decodes as an int32; other types are refused.
func TestExtractorSequenceTypes(t *testing.T) {
	e := priceChanged("42", int32(12), time.Time{})
	_, rev, err := revcloudevents.Extractor()(e)
	require.NoError(t, err)
	assert.Equal(t, revguard.Revision(12), rev)

	e = priceChanged("42", true, time.Time{})
	_, _, err = revcloudevents.Extractor()(e)
	assert.ErrorIs(t, err, revguard.ErrInvalidRevision)
	assert.ErrorContains(t, err, `extension "sequence": a bool, not a decimal integer`)
}

func TestExtractorByTime(t *testing.T) {
	at := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	e := priceChanged("42", "not-a-counter", at)
	_, _, err := revcloudevents.Extractor()(e)
	require.ErrorIs(t, err, revguard.ErrInvalidRevision)
	key, rev, err := revcloudevents.ExtractorByTime()(e)
	require.NoError(t, err, "the sequence is ignored")
	want, _ := revguard.Timestamp(at)
	assert.Equal(t, want, rev)
	k2, _, _ := revcloudevents.Extractor()(priceChanged("42", "7", at))
	assert.Equal(t, k2, key, "the same key either way")
	_, _, err = revcloudevents.ExtractorByTime()(priceChanged("42", "7", time.Time{}))
	assert.ErrorIs(t, err, revguard.ErrInvalidRevision, "no time, no revision")
}
