package revcloudevents_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/protocol"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/revguard/revguard"
	"github.com/revguard/revguard/contrib/revcloudevents"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Through the SDK's HTTP transport, in either encoding, the handler runs
// once per entity revision, and the sender reads what the guard did.
func TestHTTP(t *testing.T) {
	at := time.Date(2026, 11, 23, 9, 0, 0, 500, time.UTC)
	for _, mode := range []struct {
		name     string
		encoding func(context.Context) context.Context
	}{
		{"binary", cloudevents.WithEncodingBinary},
		{"structured", cloudevents.WithEncodingStructured},
	} {
		t.Run(mode.name, func(t *testing.T) {
			g, rec := newGuard(), &recorder{}
			sender := newSender(t, serve(t, g, rec.handle))
			ctx := mode.encoding(context.Background())

			assertOutcome(t, revguard.Applied, sender.Send(ctx, priceChanged("42", "2", time.Time{})))
			assertOutcome(t, revguard.Duplicate, sender.Send(ctx, priceChanged("42", "2", time.Time{})))
			assertOutcome(t, revguard.Stale, sender.Send(ctx, priceChanged("42", int32(1), time.Time{})))
			assertOutcome(t, revguard.Applied, sender.Send(ctx, priceChanged("42", int32(3), time.Time{})))

			// Without a sequence the time is the revision; the sequence wins
			// when there are both.
			assertOutcome(t, revguard.Applied, sender.Send(ctx, priceChanged("7", nil, at)))
			assertOutcome(t, revguard.Stale, sender.Send(ctx, priceChanged("7", nil, at.Add(-time.Nanosecond))))
			assertOutcome(t, revguard.Stale, sender.Send(ctx, priceChanged("7", "9", at)))

			// client.Request's result reads the same.
			resp, res := sender.Request(ctx, priceChanged("7", nil, at))
			assert.Nil(t, resp, "the receiver answers with no event")
			assertOutcome(t, revguard.Duplicate, res)

			assert.Equal(t, []string{"42", "42", "7"}, rec.subjects())
			stamp, err := revguard.Timestamp(at)
			require.NoError(t, err)
			assertApplied(t, g, revguard.Key(source, "42"), 3)
			assertApplied(t, g, revguard.Key(source, "7"), stamp)
		})
	}
}

// A delivery of an entity whose claim another delivery holds gets a
// retryable NACK; a sender with retries gets it applied once the claim is
// released.
func TestInFlight(t *testing.T) {
	g := newGuard()
	entered, release := make(chan struct{}), make(chan struct{})
	var released bool
	sender := newSender(t, serve(t, g, func(_ context.Context, e event.Event) error {
		if e.Extensions()["sequence"] == "1" {
			close(entered)
			<-release
		}
		return nil
	}))
	ctx := context.Background()
	defer func() {
		if !released {
			close(release)
		}
	}()

	first := make(chan protocol.Result, 1)
	go func() { first <- sender.Send(ctx, priceChanged("42", "1", time.Time{})) }()
	<-entered

	res := sender.Send(ctx, priceChanged("42", "2", time.Time{}))
	assert.True(t, protocol.IsNACK(res), "want a NACK, got %v", res)
	assert.Equal(t, http.StatusTooManyRequests, status(t, res))
	assert.ErrorContains(t, res, "in flight")
	_, ok := revcloudevents.Outcome(res)
	assert.False(t, ok)

	// The SDK sender retries 429 by itself, until the claim is released.
	retried := make(chan protocol.Result, 1)
	go func() {
		ctx := cloudevents.ContextWithRetriesConstantBackoff(ctx, 5*time.Millisecond, 2000)
		retried <- sender.Send(ctx, priceChanged("42", "2", time.Time{}))
	}()
	deadline := time.Now().Add(10 * time.Second)
	for g.Stats().InFlight < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	require.GreaterOrEqual(t, g.Stats().InFlight, uint64(2), "the retrying sender was never refused")
	close(release)
	released = true

	assertOutcome(t, revguard.Applied, <-first)
	res = <-retried
	assertOutcome(t, revguard.Applied, res)
	assert.Equal(t, http.StatusOK, status(t, res))
	assertApplied(t, g, revguard.Key(source, "42"), 2)
}

// A failed handler gets a retryable NACK; a Permanent error one the
// sender does not retry, unless revguard.WithDeadLetter takes the event.
func TestHandlerErrors(t *testing.T) {
	ctx := cloudevents.ContextWithRetriesConstantBackoff(context.Background(), time.Millisecond, 3)
	fail := func(_ context.Context, e event.Event) error {
		switch e.Subject() {
		case "down":
			return errors.New("database down")
		case "poison":
			return revguard.Permanent(errors.New("price below zero"))
		}
		return nil
	}

	g := newGuard()
	sender := newSender(t, serve(t, g, fail))
	res := sender.Send(context.Background(), priceChanged("down", "1", time.Time{}))
	assert.True(t, protocol.IsNACK(res))
	assert.Equal(t, http.StatusServiceUnavailable, status(t, res))
	assert.ErrorContains(t, res, "database down", "the response body says why")
	res = sender.Send(ctx, priceChanged("down", "1", time.Time{}))
	assert.Equal(t, 3, retries(res), "503 is retried")

	res = sender.Send(ctx, priceChanged("poison", "1", time.Time{}))
	assert.True(t, protocol.IsNACK(res))
	assert.Equal(t, http.StatusBadRequest, status(t, res))
	assert.Equal(t, 0, retries(res), "400 is not retried")
	assertApplied(t, g, revguard.Key(source, "poison"), 0)

	dead := make(chan string, 1)
	g = newGuard(revguard.WithDeadLetter(func(_ context.Context, e event.Event, err error) error {
		dead <- e.Subject()
		return nil
	}))
	sender = newSender(t, serve(t, g, fail))
	assertOutcome(t, revguard.DeadLettered, sender.Send(ctx, priceChanged("poison", "1", time.Time{})))
	assert.Equal(t, "poison", <-dead)
	assertApplied(t, g, revguard.Key(source, "poison"), 1)
}

func retries(res protocol.Result) int {
	var rr *cehttp.RetriesResult
	if errors.As(res, &rr) {
		return rr.Retries
	}
	return -1
}

func TestReceiverPanicsOnNil(t *testing.T) {
	assert.PanicsWithValue(t, "revcloudevents.Receiver: nil Guard", func() { revcloudevents.Receiver(nil, (&recorder{}).handle) })
	assert.PanicsWithValue(t, "revcloudevents.Receiver: nil handler", func() { revcloudevents.Receiver(newGuard(), nil) })
}

// A protocol other than HTTP reads each result as an ACK or a NACK, and the
// receiving side can still test a NACK for the guard's error.
func TestResultAckOrNack(t *testing.T) {
	boom := errors.New("boom")
	receive := revcloudevents.Receiver(newGuard(), func(_ context.Context, e event.Event) error {
		if e.Subject() == "fails" {
			return boom
		}
		return nil
	})
	ctx := context.Background()

	for _, e := range []event.Event{priceChanged("42", "1", time.Time{}), priceChanged("42", "1", time.Time{}), priceChanged("42", "0", time.Time{})} {
		res := receive(ctx, e)
		assert.True(t, protocol.IsACK(res), "%v", res)
		assert.False(t, protocol.IsNACK(res), "%v", res)
	}
	for cause, e := range map[error]event.Event{
		boom:                        priceChanged("fails", "1", time.Time{}),
		revguard.ErrInvalidRevision: priceChanged("42", "x", time.Time{}),
	} {
		res := receive(ctx, e)
		assert.True(t, protocol.IsNACK(res), "%v", res)
		assert.False(t, protocol.IsACK(res), "%v", res)
		assert.False(t, protocol.IsUndelivered(res), "%v", res)
		assert.ErrorIs(t, res, cause)
	}
}
