package revguard_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
)

func TestDeadLetter(t *testing.T) {
	for _, mode := range []revguard.Mode{revguard.Claim, revguard.AtMostOnce} {
		t.Run(mode.String(), func(t *testing.T) {
			ctx := context.Background()
			var dead []event
			g := revguard.New(memstore.New(), extract, revguard.WithMode(mode),
				revguard.WithDeadLetter(func(_ context.Context, e event, err error) error {
					assert.ErrorContains(t, err, "bad payload")
					dead = append(dead, e)
					return nil
				}))
			bad := func(context.Context, event) error { return revguard.Permanent(errors.New("bad payload")) }
			out, err := g.Handle(ctx, event{Key: "k", Rev: 1}, bad)
			require.NoError(t, err, "a dead-lettered event is acknowledged")
			assert.Equal(t, revguard.DeadLettered, out)
			assert.Equal(t, []event{{Key: "k", Rev: 1}}, dead)
			out, err = g.Handle(ctx, event{Key: "k", Rev: 1}, bad)
			require.NoError(t, err)
			assert.Equal(t, revguard.Duplicate, out, "its revision was recorded, so redelivery stops")
			assert.Equal(t, uint64(1), g.Stats().DeadLettered)

			rs := g.HandleBatch(ctx, []event{{Key: "b", Rev: 1}}, bad)
			assert.Equal(t, revguard.DeadLettered, rs[0].Outcome)
			assert.NoError(t, rs[0].Err)
		})
	}
}

func TestDeadLetterFailureRecordsNothing(t *testing.T) {
	ctx := context.Background()
	dlErr := errors.New("dlq down")
	g := revguard.New(memstore.New(), extract,
		revguard.WithDeadLetter(func(context.Context, event, error) error { return dlErr }))
	_, err := g.Handle(ctx, event{Key: "k", Rev: 1}, func(context.Context, event) error {
		return revguard.Permanent(errors.New("bad"))
	})
	assert.ErrorIs(t, err, dlErr)
	_, ok, _ := g.Applied(ctx, "k")
	assert.False(t, ok)
}

func TestPermanentWithoutDeadLetterIsOrdinary(t *testing.T) {
	ctx := context.Background()
	g := revguard.New(memstore.New(), extract)
	perm := revguard.Permanent(errors.New("bad"))
	assert.True(t, revguard.IsPermanent(perm))
	assert.False(t, revguard.IsPermanent(errors.New("x")))
	assert.Nil(t, revguard.Permanent(nil))
	_, err := g.Handle(ctx, event{Key: "k", Rev: 1}, func(context.Context, event) error { return perm })
	assert.Same(t, perm, err)
	_, ok, _ := g.Applied(ctx, "k")
	assert.False(t, ok)
}

func TestWithDeadLetterOfAnotherType(t *testing.T) {
	assert.PanicsWithValue(t, "revguard: New: WithDeadLetter takes func(context.Context, string, error) error, not a callback for this guard's events",
		func() {
			revguard.New(memstore.New(), extract,
				revguard.WithDeadLetter(func(context.Context, string, error) error { return nil }))
		})
}

func TestShadowDropsNothing(t *testing.T) {
	ctx := context.Background()
	var seen []revguard.Decision
	g := revguard.New(memstore.New(), extract, revguard.WithShadow(),
		revguard.WithObserver(func(d revguard.Decision) { seen = append(seen, d) }))
	var rec recorder
	for _, e := range []event{{Key: "k", Rev: 2}, {Key: "k", Rev: 2}, {Key: "k", Rev: 1}, {Key: ""}} {
		_, err := g.Handle(ctx, e, rec.handle)
		require.NoError(t, err, "the handler's error alone is returned")
	}
	assert.Equal(t, []revguard.Revision{2, 2, 1, 0}, rec.revs(), "every event reached the handler")
	require.Len(t, seen, 4)
	assert.Equal(t, revguard.Applied, seen[0].Outcome)
	assert.Equal(t, revguard.Duplicate, seen[1].Outcome)
	assert.Equal(t, revguard.Stale, seen[2].Outcome)
	assert.ErrorIs(t, seen[3].Err, revguard.ErrInvalidKey)
	assert.Equal(t, revguard.Stats{Applied: 1, Duplicate: 1, Stale: 1, Invalid: 1}, g.Stats())

	boom := errors.New("boom")
	rs := g.HandleBatch(ctx, []event{{Key: "k", Rev: 1}, {Key: "j", Rev: 1}}, func(context.Context, event) error { return boom })
	assert.ErrorIs(t, rs[0].Err, boom)
	assert.ErrorIs(t, rs[1].Err, boom)
}
