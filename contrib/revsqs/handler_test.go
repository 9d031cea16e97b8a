package revsqs_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/revguard/revguard"
	"github.com/revguard/revguard/contrib/revsqs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A standard queue's batch reports exactly the messages to redeliver: a
// failed handler's and one whose entity is in flight elsewhere, not the
// applied, duplicate or stale ones.
func TestStandardBatch(t *testing.T) {
	ctx := context.Background()
	g := newGuard(revguard.WithBatchConcurrency(4))
	rec := &recorder{fail: map[string]error{"C@1": errors.New("database down")}}

	// Another invocation holds entity D while the batch runs.
	entered, release := make(chan struct{}), make(chan struct{})
	holder := revsqs.Handler(g, func(context.Context, events.SQSMessage) error {
		close(entered)
		<-release
		return nil
	})
	type answer struct {
		resp events.SQSEventResponse
		err  error
	}
	held := make(chan answer, 1)
	go func() {
		resp, err := holder(ctx, events.SQSEvent{Records: []events.SQSMessage{message(standardARN, "d0", "D", "1")}})
		held <- answer{resp, err}
	}()
	<-entered

	_, err := g.Handle(ctx, message(standardARN, "e0", "E", "10"), rec.handle)
	require.NoError(t, err)

	var mu sync.Mutex
	var later []string
	var delays []time.Duration
	handler := revsqs.Handler(g, rec.handle, revsqs.WithRetryLater(func(_ context.Context, m events.SQSMessage, d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		later, delays = append(later, m.ReceiptHandle), append(delays, d)
	}))
	resp, err := handler(ctx, events.SQSEvent{Records: []events.SQSMessage{
		message(standardARN, "a1", "A", "1"),
		message(standardARN, "a1-copy", "A", "1"), // the same message sent twice
		message(standardARN, "b5", "B", "5"),
		message(standardARN, "b3", "B", "3"),   // older than b5 in the same batch
		message(standardARN, "c1", "C", "1"),   // its handler fails
		message(standardARN, "d2", "D", "2"),   // D is in flight
		message(standardARN, "e9", "E", "9"),   // older than the applied 10
		message(standardARN, "e10", "E", "10"), // redelivery of the applied 10
	}})
	close(release)

	assert.ElementsMatch(t, []string{"c1", "d2"}, reported(t, resp, err))
	assert.ElementsMatch(t, []string{"E@10", "A@1", "B@5", "C@1"}, rec.bodies(), "each handler ran once; B@3, D@2 and E's redeliveries never ran")
	assert.Equal(t, []string{"receipt-d2"}, later, "WithRetryLater is called for the in-flight message only")
	assert.Equal(t, []time.Duration{revguard.RetryDelay}, delays)
	a := <-held
	assert.Empty(t, reported(t, a.resp, a.err), "the holder's message was applied")

	assertApplied(t, g, "A", "1")
	assertApplied(t, g, "B", "5")
	assertApplied(t, g, "C", "")
	assertApplied(t, g, "D", "1")
	assertApplied(t, g, "E", "10")

	// SQS redelivers c1 and d2; now both apply.
	rec.fail = nil
	resp, err = handler(ctx, events.SQSEvent{Records: []events.SQSMessage{
		message(standardARN, "c1", "C", "1"),
		message(standardARN, "d2", "D", "2"),
	}})
	assert.Empty(t, reported(t, resp, err))
	assertApplied(t, g, "C", "1")
	assertApplied(t, g, "D", "2")
}

// A Permanent handler error is acknowledged when revguard.WithDeadLetter
// takes the message, and reported for the queue's redrive policy when no
// callback does.
func TestPermanent(t *testing.T) {
	ctx := context.Background()
	poison := errors.New("price below zero")
	h := func(_ context.Context, m events.SQSMessage) error {
		if m.MessageId == "bad" {
			return revguard.Permanent(poison)
		}
		return nil
	}
	batch := events.SQSEvent{Records: []events.SQSMessage{
		message(standardARN, "ok", "A", "1"),
		message(standardARN, "bad", "B", "7"),
	}}

	t.Run("WithDeadLetter", func(t *testing.T) {
		var dead []string
		g := newGuard(revguard.WithDeadLetter(func(_ context.Context, m events.SQSMessage, err error) error {
			assert.ErrorIs(t, err, poison)
			dead = append(dead, m.MessageId)
			return nil
		}))
		resp, err := revsqs.Handler(g, h)(ctx, batch)
		assert.Empty(t, reported(t, resp, err), "a dead-lettered message is a success")
		assert.Equal(t, []string{"bad"}, dead)
		assertApplied(t, g, "B", "7")
	})
	t.Run("without", func(t *testing.T) {
		g := newGuard()
		resp, err := revsqs.Handler(g, h)(ctx, batch)
		assert.Equal(t, []string{"bad"}, reported(t, resp, err))
		assertApplied(t, g, "A", "1")
		assertApplied(t, g, "B", "")
	})
}

// A message without a usable key or revision is reported, so that the
// queue's redrive policy moves it to the dead-letter queue; its handler
// never runs and nothing is stored.
func TestBadInput(t *testing.T) {
	noKey := message(standardARN, "no-key", "K", "1")
	delete(noKey.MessageAttributes, "entity")
	binary := message(standardARN, "binary-key", "K", "1")
	binary.MessageAttributes["entity"] = events.SQSMessageAttribute{BinaryValue: []byte("K"), DataType: "Binary"}
	badRev := message(standardARN, "bad-rev", "K", "v2")
	negative := message(standardARN, "negative", "K", "-3")
	empty := message(standardARN, "empty-key", "", "1")

	for _, arn := range []string{standardARN, fifoARN} {
		t.Run(arn[len(arn)-4:], func(t *testing.T) {
			rec := &recorder{}
			g := newGuard()
			var msgs []events.SQSMessage
			for _, m := range []events.SQSMessage{noKey, binary, badRev, negative, empty} {
				m.EventSourceARN = arn
				msgs = append(msgs, m)
			}
			resp, err := revsqs.Handler(g, rec.handle)(context.Background(), events.SQSEvent{Records: msgs})
			assert.Equal(t, []string{"no-key", "binary-key", "bad-rev", "negative", "empty-key"}, reported(t, resp, err))
			assert.Empty(t, rec.bodies())
			assertApplied(t, g, "K", "")
		})
	}
}

func TestHandlerPanicsOnNil(t *testing.T) {
	g := newGuard()
	assert.PanicsWithValue(t, "revsqs.Handler: nil Guard", func() { revsqs.Handler(nil, (&recorder{}).handle) })
	assert.PanicsWithValue(t, "revsqs.Handler: nil handler", func() { revsqs.Handler(g, nil) })
	assert.PanicsWithValue(t, "revsqs.Handler: nil Option", func() { revsqs.Handler(g, (&recorder{}).handle, nil) })
	assert.PanicsWithValue(t, "revsqs.WithRetryLater(nil)", func() { revsqs.WithRetryLater(nil) })
}
