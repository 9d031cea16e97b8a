package revcloudevents_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/protocol"
	"github.com/revguard/revguard"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An event without a usable key or revision gets a NACK the sender does
// not retry; its handler never runs and nothing is stored.
func TestBadInput(t *testing.T) {
	g, rec := newGuard(), &recorder{}
	url := serve(t, g, rec.handle)
	sender := newSender(t, url)
	ctx := cloudevents.ContextWithRetriesConstantBackoff(context.Background(), time.Millisecond, 3)

	for _, c := range []struct {
		name string
		e    event.Event
		says string
	}{
		{"no sequence or time", priceChanged("42", nil, time.Time{}), `both missing`},
		{"sequence not a number", priceChanged("42", "v2", time.Time{}), `extension "sequence": "v2" is not a decimal counter`},
		{"negative sequence", priceChanged("42", int32(-1), time.Time{}), `extension "sequence": "-1" is not a decimal counter`},
		{"sequence beyond uint64", priceChanged("42", "18446744073709551616", time.Time{}), `above the largest revision`},
		{"time far ahead", priceChanged("42", nil, time.Now().Add(time.Hour)), `ahead of the receiver's clock`},
		{"time before 1970", priceChanged("42", nil, time.Date(1969, 7, 20, 20, 17, 0, 0, time.UTC)), `before 1970`},
	} {
		for _, mode := range []func(context.Context) context.Context{cloudevents.WithEncodingBinary, cloudevents.WithEncodingStructured} {
			res := sender.Send(mode(ctx), c.e)
			assert.True(t, protocol.IsNACK(res), "%s: want a NACK, got %v", c.name, res)
			assert.Equal(t, http.StatusBadRequest, status(t, res), c.name)
			assert.Equal(t, 0, retries(res), "%s: retried", c.name)
			// Without retries, the sender's result carries the reason.
			assert.ErrorContains(t, sender.Send(mode(context.Background()), c.e), c.says, c.name)
		}
	}

	// The SDK sender refuses to send an event without a source, and the
	// receiving SDK answers 400 to one before the receiver runs. (It reads
	// an empty subject as none, so only Extractor's test sees one.)
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(`{}`))
	require.NoError(t, err)
	req.Header = http.Header{"Ce-Specversion": {"1.0"}, "Ce-Id": {"1"}, "Ce-Type": {"t"}, "Ce-Subject": {"42"}, "Ce-Sequence": {"1"}}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "no source")

	assert.Empty(t, rec.subjects())
	assertApplied(t, g, revguard.Key(source, "42"), 0)
	assertApplied(t, g, revguard.Key(source), 0)
	assert.Equal(t, uint64(0), g.Stats().Applied)
}
