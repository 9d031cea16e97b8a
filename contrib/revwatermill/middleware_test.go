package revwatermill_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
	"github.com/revguard/revguard/contrib/revwatermill"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newGuard(store revguard.Store, opts ...revguard.Option) *revguard.Guard[*message.Message] {
	return revguard.New(store, revwatermill.Metadata(revwatermill.KeyField, revwatermill.RevisionField), opts...)
}

// produce is a handler that records each message it sees and produces one
// message naming it.
func produce(handled *journal) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		handled.add(label(msg))
		return []*message.Message{message.NewMessage(watermill.NewUUID(), []byte(label(msg)))}, nil
	}
}

func TestDuplicatesAndStaleReachHandlerOnceInOrder(t *testing.T) {
	ctx := testContext(t)
	ps, out := newPubSub(t), &sink{}
	g := newGuard(memstore.New())
	var handled, routed journal
	runRouter(ctx, t, ps, out, produce(&handled), routed.outcomes, revwatermill.Middleware(g))

	publish(ctx, t, ps,
		event("a", "1"), event("a", "2"), event("a", "2"), event("a", "1"),
		event("b", "5"), event("a", "3"), event("b", "5"), event("b", "4"),
		event("a", "3"), event("b", "6"), event("a", "2"))

	want := []string{"a@1", "a@2", "b@5", "a@3", "b@6"}
	assert.Equal(t, want, handled.list())
	assert.Equal(t, want, out.payloads(outTopic), "only applied messages produce")
	for _, o := range routed.list() {
		assert.True(t, strings.HasPrefix(o, "ack "), o)
	}
	assert.Len(t, routed.list(), 11)
	st := g.Stats()
	assert.Equal(t, [3]uint64{5, 3, 3}, [3]uint64{st.Applied, st.Duplicate, st.Stale})
	rev, ok, err := g.Applied(ctx, "a")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, revguard.Revision(3), rev)
}

// The flaw of watermill's Deduplicator: it records a message as seen before
// the handler runs, so the retry of a failed handler is dropped. Here the
// retry is handled, by watermill's Retry middleware or by the Pub/Sub's
// redelivery after a nack.
func TestFailedHandlerIsAppliedOnRetry(t *testing.T) {
	for _, tc := range []struct {
		name  string
		retry []message.HandlerMiddleware
		nacks int
	}{
		{"Retry middleware", []message.HandlerMiddleware{
			middleware.Retry{MaxRetries: 3, InitialInterval: time.Millisecond, ShouldRetry: revwatermill.ShouldRetry}.Middleware,
		}, 0},
		{"redelivery after nack", nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			ps, out := newPubSub(t), &sink{}
			g := newGuard(memstore.New())
			var handled, routed journal
			var once sync.Once
			h := func(msg *message.Message) ([]*message.Message, error) {
				handled.add(label(msg))
				failed := false
				once.Do(func() { failed = true })
				if failed {
					return []*message.Message{message.NewMessage(watermill.NewUUID(), []byte("from the failed run"))},
						errors.New("database unavailable")
				}
				return []*message.Message{message.NewMessage(watermill.NewUUID(), []byte(label(msg)))}, nil
			}
			mw := append([]message.HandlerMiddleware{routed.outcomes}, tc.retry...)
			runRouter(ctx, t, ps, out, h, append(mw, revwatermill.Middleware(g))...)

			publish(ctx, t, ps, event("a", "1"), event("a", "1"), event("a", "2"))

			assert.Equal(t, []string{"a@1", "a@1", "a@2"}, handled.list(), "the failed revision runs again, then once")
			assert.Equal(t, []string{"a@1", "a@2"}, out.payloads(outTopic))
			nacks := 0
			for _, o := range routed.list() {
				if strings.HasPrefix(o, "nack ") {
					nacks++
					assert.Contains(t, o, "database unavailable")
				}
			}
			assert.Equal(t, tc.nacks, nacks)
			rev, ok, err := g.Applied(ctx, "a")
			require.NoError(t, err)
			assert.True(t, ok)
			assert.Equal(t, revguard.Revision(2), rev)
		})
	}
}

// A handler whose revision could not be recorded (the claim was lost before
// the commit) runs again, and only the produced messages of the run that
// was recorded are published.
func TestProducedMessagesOnlyOfRecordedRuns(t *testing.T) {
	ctx := testContext(t)
	ps, out := newPubSub(t), &sink{}
	store := &spyStore{Store: memstore.New(), loseCommit: 1}
	g := newGuard(store)
	var handled, routed journal
	runRouter(ctx, t, ps, out, produce(&handled), routed.outcomes, revwatermill.Middleware(g))

	publish(ctx, t, ps, event("a", "1"))

	assert.Equal(t, []string{"a@1", "a@1"}, handled.list())
	assert.Equal(t, []string{"a@1"}, out.payloads(outTopic))
	outcomes := routed.list()
	require.Len(t, outcomes, 2)
	assert.Contains(t, outcomes[0], revguard.ErrLeaseLost.Error())
	assert.Equal(t, "ack a@1", outcomes[1])
}

// Bad input and Permanent handler errors go to the poison queue, which
// IsDeadLetter selects: the handler never sees bad input and nothing is
// recorded for it. An ordinary handler error is not poisoned: the message
// comes back and is applied.
func TestDeadLettersGoToPoisonQueue(t *testing.T) {
	ctx := testContext(t)
	ps, out := newPubSub(t), &sink{}
	store := &spyStore{Store: memstore.New()}
	g := newGuard(store)
	poison, err := middleware.PoisonQueueWithFilter(out, poisonTopic, revwatermill.IsDeadLetter)
	require.NoError(t, err)
	var handled journal
	var once sync.Once
	h := func(msg *message.Message) ([]*message.Message, error) {
		handled.add(label(msg))
		switch msg.Metadata.Get(revwatermill.KeyField) {
		case "refused":
			return nil, revguard.Permanent(errors.New("no such product"))
		case "flaky":
			failed := false
			once.Do(func() { failed = true })
			if failed {
				return nil, errors.New("timeout")
			}
		}
		return nil, nil
	}
	runRouter(ctx, t, ps, out, h, poison, revwatermill.Middleware(g))

	publish(ctx, t, ps,
		event("", "1"), event("a", "yesterday"), event("a", ""), event("a", "-1"),
		event("refused", "1"), event("flaky", "1"))

	reasons := map[string]string{}
	for _, m := range out.messages(poisonTopic) {
		reasons[label(m)] = m.Metadata.Get(middleware.ReasonForPoisonedKey)
		assert.Equal(t, eventsTopic, m.Metadata.Get(middleware.PoisonedTopicKey))
	}
	assert.Equal(t, map[string]string{
		"@1":          `revguard: invalid key: metadata "entity_key": missing`,
		"a@yesterday": `revguard: invalid revision: metadata "revision": "yesterday" is neither a decimal integer nor an RFC 3339 timestamp`,
		"a@":          `revguard: invalid revision: metadata "revision": missing`,
		"a@-1":        `revguard: invalid revision: metadata "revision": "-1" is neither a decimal integer nor an RFC 3339 timestamp`,
		"refused@1":   "permanent: no such product",
	}, reasons)
	assert.Equal(t, []string{"refused@1", "flaky@1", "flaky@1"}, handled.list())
	assert.Equal(t, []string{"refused", "flaky", "flaky"}, store.claims(), "bad input reaches no store")
	for key, want := range map[string]bool{"a": false, "refused": false, "flaky": true} {
		_, ok, err := g.Applied(ctx, key)
		require.NoError(t, err)
		assert.Equal(t, want, ok, key)
	}
	assert.Equal(t, uint64(4), g.Stats().Invalid)
}

// A Permanent handler error that WithDeadLetter takes is acknowledged, and
// the failed run's produced messages are not published.
func TestWithDeadLetterAcknowledges(t *testing.T) {
	ctx := testContext(t)
	ps, out := newPubSub(t), &sink{}
	var dead journal
	g := newGuard(memstore.New(), revguard.WithDeadLetter(func(_ context.Context, msg *message.Message, err error) error {
		dead.add(label(msg) + ": " + err.Error())
		return nil
	}))
	var routed journal
	h := func(msg *message.Message) ([]*message.Message, error) {
		return []*message.Message{message.NewMessage(watermill.NewUUID(), nil)}, revguard.Permanent(errors.New("malformed"))
	}
	runRouter(ctx, t, ps, out, h, routed.outcomes, revwatermill.Middleware(g))

	publish(ctx, t, ps, event("a", "1"), event("a", "1"))

	assert.Equal(t, []string{"a@1: permanent: malformed"}, dead.list())
	assert.Equal(t, []string{"ack a@1", "ack a@1"}, routed.list())
	assert.Empty(t, out.messages(outTopic))
}

// While the handler runs, the message's context is the guard's; a retry
// from outside finds the router's context again.
func TestHandlerContext(t *testing.T) {
	type marker struct{}
	g := newGuard(memstore.New())
	msg := event("a", "1")
	base := context.WithValue(context.Background(), marker{}, "router")
	msg.SetContext(base)
	var inside context.Context
	h := revwatermill.Middleware(g)(func(msg *message.Message) ([]*message.Message, error) {
		inside = msg.Context()
		return nil, nil
	})
	_, err := h(msg)
	require.NoError(t, err)
	assert.Equal(t, "router", inside.Value(marker{}), "the guard's context derives from the message's")
	assert.Same(t, base, msg.Context())
}

func TestMiddlewareNilGuard(t *testing.T) {
	assert.PanicsWithValue(t, "revwatermill: Middleware(nil)", func() { revwatermill.Middleware(nil) })
}

// Under WithShadow every message reaches the handler, and what it produces
// is published, duplicates included.
func TestShadowPublishesEveryRun(t *testing.T) {
	ctx := testContext(t)
	ps, out := newPubSub(t), &sink{}
	g := newGuard(memstore.New(), revguard.WithShadow())
	var handled journal
	runRouter(ctx, t, ps, out, produce(&handled), revwatermill.Middleware(g))

	publish(ctx, t, ps, event("a", "1"), event("a", "1"), event("a", "0"))

	assert.Equal(t, []string{"a@1", "a@1", "a@0"}, handled.list())
	assert.Equal(t, []string{"a@1", "a@1", "a@0"}, out.payloads(outTopic))
	st := g.Stats()
	assert.Equal(t, [3]uint64{1, 1, 1}, [3]uint64{st.Applied, st.Duplicate, st.Stale})
}
