package revguard_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
)

func TestDropCacheAnswersWithoutStore(t *testing.T) {
	ctx := context.Background()
	s := newCounting()
	var mu sync.Mutex
	var seen []bool
	g := revguard.New(s, extract, revguard.WithDropCache(16), revguard.WithObserver(func(d revguard.Decision) {
		mu.Lock()
		seen = append(seen, d.Cached)
		mu.Unlock()
	}))
	rec := &recorder{}
	out, err := g.Handle(ctx, event{Key: "a", Rev: 5}, rec.handle)
	require.NoError(t, err)
	require.Equal(t, revguard.Applied, out)
	before := s.total()

	out, err = g.Handle(ctx, event{Key: "a", Rev: 5}, rec.handle)
	require.NoError(t, err)
	assert.Equal(t, revguard.Duplicate, out)
	out, err = g.Handle(ctx, event{Key: "a", Rev: 4}, rec.handle)
	require.NoError(t, err)
	assert.Equal(t, revguard.Stale, out)
	res := g.HandleBatch(ctx, []event{{Key: "a", Rev: 3}, {Key: "a", Rev: 5}}, rec.handle)
	assert.Equal(t, []string{"stale", "duplicate"}, outcomes(res))
	assert.Equal(t, before, s.total(), "drops the cache knows of made store calls")
	// The batch asks about its highest revision of "a" only: the lower one
	// is stale once that is acknowledged.
	assert.Equal(t, uint64(3), g.Stats().Cached)
	assert.Equal(t, []bool{false, true, true, true, false}, seen, "Decision.Cached of each decision")
	assert.Equal(t, []revguard.Revision{5}, rec.revs())

	// A newer revision is never answered by the cache.
	out, err = g.Handle(ctx, event{Key: "a", Rev: 6}, rec.handle)
	require.NoError(t, err)
	assert.Equal(t, revguard.Applied, out)
	assert.Greater(t, s.total(), before)
}

// A drop the store reported teaches the cache too: the next copy of a
// redelivered event is answered locally.
func TestDropCacheLearnsFromStoreDrops(t *testing.T) {
	ctx := context.Background()
	s := newCounting()
	other := revguard.New(s, extract)
	_, err := other.Handle(ctx, event{Key: "a", Rev: 9}, func(context.Context, event) error { return nil })
	require.NoError(t, err)

	g := revguard.New(s, extract, revguard.WithDropCache(16))
	out, err := g.Handle(ctx, event{Key: "a", Rev: 7}, nil2)
	require.NoError(t, err)
	assert.Equal(t, revguard.Stale, out)
	claims := s.n("Claim")
	out, err = g.Handle(ctx, event{Key: "a", Rev: 9}, nil2)
	require.NoError(t, err)
	assert.Equal(t, revguard.Duplicate, out)
	assert.Equal(t, claims, s.n("Claim"))
}

func nil2(context.Context, event) error { return nil }

// Neither a failed handler nor a refused claim teaches the cache a revision
// that was not applied.
func TestDropCacheLearnsOnlyApplied(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []revguard.Mode{revguard.Claim, revguard.AtMostOnce} {
		t.Run(mode.String(), func(t *testing.T) {
			g := revguard.New(memstore.New(), extract, revguard.WithMode(mode), revguard.WithDropCache(16))
			_, err := g.Handle(ctx, event{Key: "a", Rev: 3}, func(context.Context, event) error { return fmt.Errorf("boom") })
			require.Error(t, err)
			out, err := g.Handle(ctx, event{Key: "a", Rev: 3}, nil2)
			require.NoError(t, err)
			if mode == revguard.Claim {
				assert.Equal(t, revguard.Applied, out, "a failed Claim handler must run again")
			} else {
				assert.Equal(t, revguard.Duplicate, out, "an advance is recorded whatever its handler did")
			}
		})
	}
}

func TestDropCacheSeesSetAppliedAndForget(t *testing.T) {
	ctx := context.Background()
	g := revguard.New(memstore.New(), extract, revguard.WithDropCache(16))
	rec := &recorder{}
	_, err := g.Handle(ctx, event{Key: "a", Rev: 100}, rec.handle)
	require.NoError(t, err)
	require.NoError(t, g.SetApplied(ctx, "a", 10))
	out, err := g.Handle(ctx, event{Key: "a", Rev: 11}, rec.handle)
	require.NoError(t, err)
	assert.Equal(t, revguard.Applied, out)
	require.NoError(t, g.Forget(ctx, "a"))
	out, err = g.Handle(ctx, event{Key: "a", Rev: 2}, rec.handle)
	require.NoError(t, err)
	assert.Equal(t, revguard.Applied, out)
	assert.Equal(t, []revguard.Revision{100, 11, 2}, rec.revs())
}

// An answer read from the store while SetApplied lowered the revision must
// not outlive it: once SetApplied returns, the next revision applies.
func TestDropCacheSetAppliedRace(t *testing.T) {
	ctx := context.Background()
	for round := range 200 {
		g := revguard.New(memstore.New(), extract, revguard.WithDropCache(16))
		_, err := g.Handle(ctx, event{Key: "a", Rev: 1000}, nil2)
		require.NoError(t, err)
		var wg sync.WaitGroup
		stop := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := revguard.Revision(1000); ; r++ {
				select {
				case <-stop:
					return
				default:
				}
				_, _ = g.Handle(ctx, event{Key: "a", Rev: r % 1001}, nil2)
			}
		}()
		require.NoError(t, g.SetApplied(ctx, "a", 1))
		close(stop)
		wg.Wait()
		// The writer may have applied revisions above 1 since; read what is
		// applied and check the cache lets the next one through.
		applied, ok, err := g.Applied(ctx, "a")
		require.NoError(t, err)
		require.True(t, ok)
		if applied == 1000 {
			continue // the writer re-applied 1000 after the Set: a correct drop follows
		}
		out, err := g.Handle(ctx, event{Key: "a", Rev: applied + 1}, nil2)
		require.NoError(t, err)
		require.Equal(t, revguard.Applied, out, "round %d: applied %d, the next revision was dropped", round, applied)
	}
}

// The cached guard decides exactly as an uncached one under random
// deliveries, with a cache small enough to evict, also across SetApplied
// and Forget, in every ordering and in HandleBatch.
func TestDropCacheDifferential(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []revguard.Mode{revguard.Claim, revguard.AtMostOnce} {
		for _, ord := range []revguard.Ordering{revguard.Latest, revguard.Sequential} {
			t.Run(mode.String()+"/"+ord.String(), func(t *testing.T) {
				opts := []revguard.Option{revguard.WithMode(mode), revguard.WithOrdering(ord)}
				plain := revguard.New(memstore.New(), extract, opts...)
				cached := revguard.New(memstore.New(), extract, append(opts, revguard.WithDropCache(8))...)
				rng := rand.New(rand.NewPCG(1, uint64(mode)<<8|uint64(ord)))
				fail := func(context.Context, event) error { return fmt.Errorf("handler failed") }
				for step := range 20000 {
					key := fmt.Sprintf("k%d", rng.IntN(40))
					rev := revguard.Revision(rng.IntN(12))
					h := nil2
					if rng.IntN(10) == 0 {
						h = fail
					}
					switch n := rng.IntN(100); {
					case n == 0:
						require.NoError(t, plain.SetApplied(ctx, key, rev))
						require.NoError(t, cached.SetApplied(ctx, key, rev))
					case n == 1:
						require.NoError(t, plain.Forget(ctx, key))
						require.NoError(t, cached.Forget(ctx, key))
					case n < 10:
						batch := make([]event, 1+rng.IntN(6))
						for i := range batch {
							batch[i] = event{Key: fmt.Sprintf("k%d", rng.IntN(40)), Rev: revguard.Revision(rng.IntN(12))}
						}
						want := plain.HandleBatch(ctx, batch, h)
						got := cached.HandleBatch(ctx, batch, h)
						require.Equal(t, outcomes(want), outcomes(got), "step %d: batch %v", step, batch)
					default:
						wantOut, wantErr := plain.Handle(ctx, event{Key: key, Rev: rev}, h)
						gotOut, gotErr := cached.Handle(ctx, event{Key: key, Rev: rev}, h)
						require.Equal(t, wantOut, gotOut, "step %d: %s revision %d", step, key, rev)
						require.Equal(t, wantErr == nil, gotErr == nil, "step %d: %s revision %d: %v / %v", step, key, rev, wantErr, gotErr)
					}
				}
				assert.NotZero(t, cached.Stats().Cached, "the cache answered nothing: the test proves nothing")
			})
		}
	}
}

type expiring struct{ revguard.Store }

func (expiring) Expires() bool { return true }

func TestDropCacheRefusesExpiringStore(t *testing.T) {
	assert.PanicsWithValue(t,
		"revguard: New: WithDropCache(8) over revguard_test.expiring, whose entities expire: an expired entity applies revisions the cache would drop",
		func() { revguard.New(expiring{memstore.New()}, extract, revguard.WithDropCache(8)) })
	assert.NotPanics(t, func() { revguard.New(expiring{memstore.New()}, extract) })
	assert.Panics(t, func() { revguard.WithDropCache(-1) })
}
