package revjetstream_test

import (
	"context"
	"errors"
	"github.com/nats-io/nats.go/jetstream"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
	"github.com/revguard/revguard/contrib/revjetstream"
)

func newGuard(opts ...revguard.Option) *revguard.Guard[jetstream.Msg] {
	return revguard.New(memstore.New(), revjetstream.Headers(revjetstream.KeyHeader, revjetstream.RevisionHeader), opts...)
}

// TestHandleSettles checks the mapping of every answer of the guard onto
// JetStream's acknowledgements.
func TestHandleSettles(t *testing.T) {
	errDown := errors.New("price service down")
	ok := func(context.Context, jetstream.Msg) error { return nil }
	for _, tc := range []struct {
		name    string
		msg     *fakeMsg
		handler func(context.Context, jetstream.Msg) error
		opts    []revjetstream.Option
		want    string // the settling call
		is      error  // what Handle's error wraps
	}{
		{"applied", newFakeMsg("p1", "2"), ok, nil, "Ack", nil},
		{"duplicate", newFakeMsg("p1", "1"), ok, nil, "Ack", nil},
		{"in flight", newFakeMsg("held", "2"), ok, nil, "NakWithDelay 1s", revguard.ErrInFlight},
		{"in flight, own delay", newFakeMsg("held", "2"), ok, []revjetstream.Option{revjetstream.WithRetryDelay(250 * time.Millisecond)}, "NakWithDelay 250ms", revguard.ErrInFlight},
		{"missing key", newFakeMsg("", "2"), ok, nil, `Term: revguard: invalid key: header "Event-Key" missing`, revguard.ErrInvalidKey},
		{"bad revision", newFakeMsg("p1", "two"), ok, nil, "Term: header \"Event-Revision\": revguard: invalid revision: \"two\" is neither a decimal integer nor an RFC 3339 timestamp", revguard.ErrInvalidRevision},
		{"permanent", newFakeMsg("p2", "1"), func(context.Context, jetstream.Msg) error { return revguard.Permanent(errDown) }, nil, "Term: permanent: price service down", errDown},
		{"failed", newFakeMsg("p3", "1"), func(context.Context, jetstream.Msg) error { return errDown }, nil, "Nak", errDown},
		{"failed, redeliver delay", newFakeMsg("p3", "1"), func(context.Context, jetstream.Msg) error { return errDown },
			[]revjetstream.Option{revjetstream.WithRedeliverDelay(300 * time.Millisecond)}, "NakWithDelay 300ms", errDown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGuard()
			ctx := context.Background()
			require.NoError(t, g.SetApplied(ctx, "p1", 1))
			release := holdClaim(t, g, "held", 1)
			defer release()

			ran := false
			h := func(ctx context.Context, m jetstream.Msg) error { ran = true; return tc.handler(ctx, m) }
			err := revjetstream.Handle(ctx, g, tc.msg, h, tc.opts...)
			if tc.is == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, tc.is)
			}
			assert.Equal(t, []string{tc.want}, tc.msg.calls())
			if !ran || tc.is == nil {
				return
			}
			_, applied, err := g.Applied(ctx, tc.msg.header.Get(revjetstream.KeyHeader))
			require.NoError(t, err)
			assert.False(t, applied, "a failed handler recorded nothing")
		})
	}
}

// holdClaim makes another delivery of key at rev hold its claim in g until
// release is called.
func holdClaim(t *testing.T, g *revguard.Guard[jetstream.Msg], key string, rev revguard.Revision) (release func()) {
	held, done, stop := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		_, _ = g.Handle(context.Background(), newFakeMsg(key, rev.String()), func(context.Context, jetstream.Msg) error {
			close(held)
			<-stop
			return nil
		})
	}()
	<-held
	return func() { close(stop); <-done }
}

func TestHandleReportsSettleError(t *testing.T) {
	errClosed := errors.New("connection closed")
	msg := newFakeMsg("p1", "1")
	msg.ackErr = errClosed
	err := revjetstream.Handle(context.Background(), newGuard(), msg, func(context.Context, jetstream.Msg) error { return nil })
	require.ErrorIs(t, err, errClosed)
	assert.Contains(t, err.Error(), `Ack of a message on "events.price"`)

	msg = newFakeMsg("p1", "x")
	msg.ackErr = errClosed
	err = revjetstream.Handle(context.Background(), newGuard(), msg, func(context.Context, jetstream.Msg) error { return nil })
	require.ErrorIs(t, err, errClosed, "the settling call's error")
	require.ErrorIs(t, err, revguard.ErrInvalidRevision, "and the guard's, joined")
}

func TestHandlerPassesErrors(t *testing.T) {
	var got []error
	h := revjetstream.Handler(newGuard(), func(context.Context, jetstream.Msg) error { return nil },
		revjetstream.WithErrorHandler(func(_ jetstream.Msg, err error) { got = append(got, err) }))
	h(newFakeMsg("p1", "1"))
	assert.Empty(t, got, "an acknowledged message is no error")
	h(newFakeMsg("p1", ""))
	require.Len(t, got, 1)
	assert.ErrorIs(t, got[0], revguard.ErrInvalidRevision)
}

func TestInProgressWhileHandlerRuns(t *testing.T) {
	g := newGuard()
	ackWait := 30 * time.Millisecond
	msg := newFakeMsg("p1", "1")
	err := revjetstream.Handle(context.Background(), g, msg, func(context.Context, jetstream.Msg) error {
		time.Sleep(5 * ackWait)
		return nil
	}, revjetstream.WithAckWait(ackWait))
	require.NoError(t, err)
	signals := msg.inProgress.Load()
	assert.GreaterOrEqual(t, signals, int64(3), "one signal every third of AckWait while the handler ran")
	time.Sleep(2 * ackWait)
	assert.Equal(t, signals, msg.inProgress.Load(), "no signal once the handler returned")
	assert.Equal(t, []string{"Ack"}, msg.calls())

	fast := newFakeMsg("p2", "1")
	require.NoError(t, revjetstream.Handle(context.Background(), g, fast, func(context.Context, jetstream.Msg) error { return nil }))
	assert.Zero(t, fast.inProgress.Load(), "a quick handler costs no signal")
}

func TestInProgressStopsWhenHandlerPanics(t *testing.T) {
	msg := newFakeMsg("p1", "1")
	assert.Panics(t, func() {
		_ = revjetstream.Handle(context.Background(), newGuard(), msg, func(context.Context, jetstream.Msg) error {
			time.Sleep(20 * time.Millisecond)
			panic("handler bug")
		}, revjetstream.WithAckWait(3*time.Millisecond))
	})
	signals := msg.inProgress.Load()
	assert.Positive(t, signals)
	time.Sleep(20 * time.Millisecond)
	assert.Equal(t, signals, msg.inProgress.Load(), "no signal once the handler panicked")
}
