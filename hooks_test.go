package revguard_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
)

type hookKey struct{}

// hookLog records what the hooks saw, and checks that each got the context
// Begin returned.
type hookLog struct {
	t       *testing.T
	mu      sync.Mutex
	begins  []revguard.Call
	ends    int
	calls   []string
	decided []revguard.Decision
}

func (l *hookLog) hooks() revguard.Hooks {
	mine := func(ctx context.Context) {
		assert.Equal(l.t, "begun", ctx.Value(hookKey{}), "a hook got a context other than Begin's")
	}
	return revguard.Hooks{
		Begin: func(ctx context.Context, c revguard.Call) (context.Context, func()) {
			l.mu.Lock()
			l.begins = append(l.begins, c)
			l.mu.Unlock()
			return context.WithValue(ctx, hookKey{}, "begun"), func() {
				l.mu.Lock()
				l.ends++
				l.mu.Unlock()
			}
		},
		Store: func(ctx context.Context, op string, n int, took time.Duration, err error) {
			mine(ctx)
			assert.GreaterOrEqual(l.t, took, time.Duration(0))
			l.mu.Lock()
			l.calls = append(l.calls, op+":"+string(rune('0'+n)))
			l.mu.Unlock()
		},
		Decided: func(ctx context.Context, d revguard.Decision) {
			mine(ctx)
			l.mu.Lock()
			l.decided = append(l.decided, d)
			l.mu.Unlock()
		},
	}
}

func TestHooks(t *testing.T) {
	ctx := context.Background()
	fail := errors.New("handler failed")
	handler := func(err error) revguard.Handler[event] {
		return func(ctx context.Context, e event) error {
			assert.Equal(t, "begun", ctx.Value(hookKey{}), "the handler gets Begin's context")
			time.Sleep(time.Millisecond)
			return err
		}
	}
	t.Run("Handle", func(t *testing.T) {
		l := &hookLog{t: t}
		g := revguard.New(memstore.New(), extract, revguard.WithHooks(l.hooks()), revguard.WithNamespace("ns"))
		_, err := g.Handle(ctx, event{Key: "k", Rev: 1}, handler(nil))
		require.NoError(t, err)
		_, err = g.Handle(ctx, event{Key: "k", Rev: 2}, handler(fail))
		require.ErrorIs(t, err, fail)
		_, err = g.Handle(ctx, event{Key: "k", Rev: 1}, handler(nil))
		require.NoError(t, err)
		one := revguard.Call{Namespace: "ns", Mode: revguard.Claim, Events: 1}
		assert.Equal(t, []revguard.Call{one, one, one}, l.begins)
		assert.Equal(t, 3, l.ends)
		assert.Equal(t, []string{"claim:1", "commit:1", "claim:1", "release:1", "claim:1"}, l.calls)
		require.Len(t, l.decided, 3)
		assert.Equal(t, revguard.Applied, l.decided[0].Outcome)
		assert.GreaterOrEqual(t, l.decided[0].HandlerTime, time.Millisecond)
		assert.ErrorIs(t, l.decided[1].Err, fail)
		assert.GreaterOrEqual(t, l.decided[1].HandlerTime, time.Millisecond, "a failed handler ran too")
		assert.Equal(t, revguard.Duplicate, l.decided[2].Outcome)
		assert.Zero(t, l.decided[2].HandlerTime)
		assert.Equal(t, revguard.Claim, l.decided[2].Mode)
	})
	t.Run("AtMostOnce", func(t *testing.T) {
		l := &hookLog{t: t}
		g := revguard.New(memstore.New(), extract, revguard.WithMode(revguard.AtMostOnce), revguard.WithHooks(l.hooks()))
		_, err := g.Handle(ctx, event{Key: "k", Rev: 1}, handler(nil))
		require.NoError(t, err)
		assert.Equal(t, []string{"claim:1"}, l.calls, "one advance, no commit")
		assert.Equal(t, revguard.AtMostOnce, l.decided[0].Mode)
	})
	t.Run("HandleBatch", func(t *testing.T) {
		l := &hookLog{t: t}
		g := revguard.New(memstore.New(), extract, revguard.WithHooks(l.hooks()), revguard.WithBatchConcurrency(2))
		res := g.HandleBatch(ctx, []event{{Key: "a", Rev: 1}, {Key: "b", Rev: 1}, {Key: "a", Rev: 1}, {Key: ""}}, handler(nil))
		require.Len(t, res, 4)
		assert.Equal(t, []revguard.Call{{Mode: revguard.Claim, Batch: true, Events: 4}}, l.begins, "one Begin for the batch")
		assert.Equal(t, 1, l.ends)
		assert.Equal(t, []string{"claim:2", "commit:2"}, l.calls)
		require.Len(t, l.decided, 4, "one Decided per event")
		var ran int
		for _, d := range l.decided {
			if d.HandlerTime > 0 {
				ran++
			}
		}
		assert.Equal(t, 2, ran, "the copy of a@1 and the bad event ran no handler")
	})
	t.Run("a panicking handler still ends", func(t *testing.T) {
		l := &hookLog{t: t}
		g := revguard.New(memstore.New(), extract, revguard.WithHooks(l.hooks()))
		assert.Panics(t, func() {
			_, _ = g.Handle(ctx, event{Key: "k", Rev: 1}, func(context.Context, event) error { panic("boom") })
		})
		assert.Equal(t, 1, l.ends)
		assert.Equal(t, []string{"claim:1", "release:1"}, l.calls)
	})
}

// downStore fails every claim, as a store that cannot be reached does.
type downStore struct{ revguard.Store }

var errDown = errors.New("connection refused")

func (downStore) Claim(context.Context, revguard.Request) (revguard.Reply, error) {
	return revguard.Reply{}, errDown
}

func TestStoreErrorTellsStoreFromHandler(t *testing.T) {
	ctx := context.Background()
	g := revguard.New(downStore{memstore.New()}, extract, revguard.WithoutCoalescing())
	_, err := g.Handle(ctx, event{Key: "k", Rev: 1}, func(context.Context, event) error { return nil })
	var se *revguard.StoreError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "claim", se.Op)
	assert.Equal(t, "k", se.Key)
	assert.ErrorIs(t, err, errDown)
	assert.EqualError(t, err, `revguard: claim "k" revision 1: connection refused`)

	fail := errors.New("handler failed")
	_, err = revguard.New(memstore.New(), extract).Handle(ctx, event{Key: "k", Rev: 1}, func(context.Context, event) error { return fail })
	assert.Same(t, fail, err, "a handler's error comes back as it is")
	assert.False(t, errors.As(err, &se))
}
