package revguard_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/revguard/revguard"
)

func outcomes(rs []revguard.Result) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		if r.Err != nil {
			out[i] = "err"
			if errors.Is(r.Err, revguard.ErrGap) {
				out[i] = "gap"
			}
			continue
		}
		out[i] = r.Outcome.String()
	}
	return out
}

func TestHandleBatchLatest(t *testing.T) {
	for _, mode := range []revguard.Mode{revguard.Claim, revguard.AtMostOnce} {
		t.Run(mode.String(), func(t *testing.T) {
			ctx := context.Background()
			s := newCounting()
			g := revguard.New(s, extract, revguard.WithMode(mode))
			require.NoError(t, g.SetApplied(ctx, "c", 10))
			var rec recorder
			rs := g.HandleBatch(ctx, []event{
				{Key: "a", Rev: 1}, {Key: "a", Rev: 3}, {Key: "b", Rev: 5}, {Key: "a", Rev: 3},
				{Key: "a", Rev: 2}, {Key: "c", Rev: 9}, {Key: ""}, {Key: "b", Rev: 5},
			}, rec.handle)
			assert.Equal(t, []string{"stale", "applied", "applied", "duplicate", "stale", "stale", "err", "duplicate"}, outcomes(rs),
				"a later copy of an applied event is its duplicate, as Handle would say")
			assert.ErrorIs(t, rs[6].Err, revguard.ErrInvalidKey)
			assert.ElementsMatch(t, []revguard.Revision{3, 5}, rec.revs(), "only each key's highest revision runs, once")
			assert.Equal(t, 1, s.n("claimbatch"), "one claim round trip for the batch")
			if mode == revguard.Claim {
				assert.Equal(t, 1, s.n("commitbatch"), "one commit round trip")
			}
			assert.Zero(t, s.n("claim")+s.n("commit"))
			st := g.Stats()
			assert.Equal(t, uint64(2), st.Applied, "handler runs recorded, not copies")
			assert.Equal(t, uint64(2), st.Duplicate)
			assert.Equal(t, uint64(3), st.Stale)
			assert.Equal(t, uint64(1), st.Invalid)
		})
	}
}

func TestHandleBatchLatestFailureSharesError(t *testing.T) {
	ctx := context.Background()
	g := revguard.New(newCounting(), extract)
	boom := errors.New("boom")
	rs := g.HandleBatch(ctx, []event{{Key: "a", Rev: 1}, {Key: "a", Rev: 2}, {Key: "b", Rev: 1}}, func(_ context.Context, e event) error {
		if e.Key == "a" {
			return boom
		}
		return nil
	})
	assert.ErrorIs(t, rs[0].Err, boom, "the lower revision is not acknowledged while the higher failed")
	assert.ErrorIs(t, rs[1].Err, boom)
	assert.NoError(t, rs[2].Err)
	_, ok, _ := g.Applied(ctx, "a")
	assert.False(t, ok, "the failed claim was released, not committed")
	rs = g.HandleBatch(ctx, []event{{Key: "a", Rev: 2}}, func(context.Context, event) error { return nil })
	assert.Equal(t, []string{"applied"}, outcomes(rs))
}

func TestHandleBatchLatestSkipsPoisonedRevision(t *testing.T) {
	ctx := context.Background()
	g := revguard.New(newCounting(), extract, revguard.WithMaxStep(100))
	require.NoError(t, g.SetApplied(ctx, "a", 1))
	var rec recorder
	rs := g.HandleBatch(ctx, []event{{Key: "a", Rev: 5}, {Key: "a", Rev: 1 << 60}, {Key: "a", Rev: 3}}, rec.handle)
	assert.Equal(t, []string{"applied", "err", "stale"}, outcomes(rs))
	assert.ErrorIs(t, rs[1].Err, revguard.ErrInvalidRevision)
	assert.Equal(t, []revguard.Revision{5}, rec.revs())
}

func TestHandleBatchSequentialFillsItsOwnGaps(t *testing.T) {
	ctx := context.Background()
	s := newCounting()
	g := revguard.New(s, extract, revguard.WithOrdering(revguard.Sequential))
	var rec recorder
	rs := g.HandleBatch(ctx, []event{
		{Key: "a", Rev: 3}, {Key: "a", Rev: 1}, {Key: "b", Rev: 1}, {Key: "a", Rev: 2}, {Key: "a", Rev: 2}, {Key: "a", Rev: 5},
	}, rec.handle)
	assert.Equal(t, []string{"applied", "applied", "applied", "applied", "duplicate", "gap"}, outcomes(rs))
	var a []revguard.Revision
	for _, e := range rec.ran {
		if e.Key == "a" {
			a = append(a, e.Rev)
		}
	}
	assert.Equal(t, []revguard.Revision{1, 2, 3}, a)
	assert.Equal(t, 4, s.n("claimbatch")+s.n("claim"), "one claim call per round, one round per revision of the longest key")
}

func TestHandleBatchSequentialFailureStopsTheKey(t *testing.T) {
	ctx := context.Background()
	g := revguard.New(newCounting(), extract, revguard.WithOrdering(revguard.Sequential))
	boom := errors.New("boom")
	rs := g.HandleBatch(ctx, []event{{Key: "a", Rev: 1}, {Key: "a", Rev: 2}, {Key: "a", Rev: 3}}, func(_ context.Context, e event) error {
		if e.Rev == 2 {
			return boom
		}
		return nil
	})
	assert.Equal(t, []string{"applied", "err", "gap"}, outcomes(rs))
	assert.ErrorIs(t, rs[1].Err, boom)
	rev, _, _ := g.Applied(ctx, "a")
	assert.Equal(t, revguard.Revision(1), rev)
}

func TestHandleBatchNilHandler(t *testing.T) {
	s := newCounting()
	rs := revguard.New(s, extract).HandleBatch(context.Background(), []event{{Key: "a", Rev: 1}}, nil)
	require.Len(t, rs, 1)
	assert.ErrorContains(t, rs[0].Err, "nil handler")
	assert.Zero(t, s.total())
}

func TestHandleBatchPanicReleasesClaims(t *testing.T) {
	ctx := context.Background()
	g := revguard.New(newCounting(), extract)
	func() {
		defer func() { assert.Equal(t, "kaput", recover()) }()
		g.HandleBatch(ctx, []event{{Key: "a", Rev: 1}, {Key: "b", Rev: 1}}, func(context.Context, event) error { panic("kaput") })
	}()
	rs := g.HandleBatch(ctx, []event{{Key: "a", Rev: 1}, {Key: "b", Rev: 1}}, func(context.Context, event) error { return nil })
	assert.Equal(t, []string{"applied", "applied"}, outcomes(rs))
}
