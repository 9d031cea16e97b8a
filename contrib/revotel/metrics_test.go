package revotel_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
)

// set writes an attribute set of revguard.decisions as decisions returns it.
func set(mode, outcome string, cached bool) string {
	s := "revguard.mode=" + mode + ",revguard.namespace=ns,revguard.outcome=" + outcome
	if cached {
		s = "revguard.cached=true," + s
	}
	return s
}

func failed(mode, errType string) string {
	return "error.type=" + errType + ",revguard.mode=" + mode + ",revguard.namespace=ns"
}

func TestDecisions(t *testing.T) {
	ctx := context.Background()
	handlerErr := errors.New("handler failed")
	for _, tc := range []struct {
		name  string
		store func() revguard.Store
		opts  []revguard.Option
		run   func(t *testing.T, g *revguard.Guard[event])
		want  map[string]int64
	}{{
		name: "applied, duplicate, stale",
		run: func(t *testing.T, g *revguard.Guard[event]) {
			for _, e := range []event{{"k", 2}, {"k", 2}, {"k", 1}, {"j", 1}} {
				_, err := g.Handle(ctx, e, apply)
				require.NoError(t, err)
			}
		},
		want: map[string]int64{set("claim", "applied", false): 2, set("claim", "duplicate", false): 1, set("claim", "stale", false): 1},
	}, {
		name: "drops the cache answered",
		opts: []revguard.Option{revguard.WithDropCache(10)},
		run: func(t *testing.T, g *revguard.Guard[event]) {
			for _, e := range []event{{"k", 2}, {"k", 2}, {"k", 1}} {
				_, err := g.Handle(ctx, e, apply)
				require.NoError(t, err)
			}
		},
		want: map[string]int64{set("claim", "applied", false): 1, set("claim", "duplicate", true): 1, set("claim", "stale", true): 1},
	}, {
		name: "dead-lettered",
		opts: []revguard.Option{revguard.WithDeadLetter(func(context.Context, event, error) error { return nil })},
		run: func(t *testing.T, g *revguard.Guard[event]) {
			out, err := g.Handle(ctx, event{"k", 1}, func(context.Context, event) error { return revguard.Permanent(handlerErr) })
			require.NoError(t, err)
			require.Equal(t, revguard.DeadLettered, out)
		},
		want: map[string]int64{set("claim", "dead_lettered", false): 1},
	}, {
		name: "in flight",
		run: func(t *testing.T, g *revguard.Guard[event]) {
			// The first delivery holds the claim while its handler runs.
			_, err := g.Handle(ctx, event{"k", 1}, func(ctx context.Context, e event) error {
				_, err := g.Handle(ctx, event{"k", 2}, apply)
				assert.ErrorIs(t, err, revguard.ErrInFlight)
				return nil
			})
			require.NoError(t, err)
		},
		want: map[string]int64{set("claim", "applied", false): 1, failed("claim", "in_flight"): 1},
	}, {
		name: "gap",
		opts: []revguard.Option{revguard.WithOrdering(revguard.Sequential)},
		run: func(t *testing.T, g *revguard.Guard[event]) {
			_, err := g.Handle(ctx, event{"k", 3}, apply)
			require.ErrorIs(t, err, revguard.ErrGap)
		},
		want: map[string]int64{failed("claim", "gap"): 1},
	}, {
		name:  "lease lost",
		store: func() revguard.Store { return &faultyStore{Store: memstore.New(), commit: revguard.ErrLeaseLost} },
		run: func(t *testing.T, g *revguard.Guard[event]) {
			_, err := g.Handle(ctx, event{"k", 1}, apply)
			require.ErrorIs(t, err, revguard.ErrLeaseLost)
		},
		want: map[string]int64{failed("claim", "lease_lost"): 1},
	}, {
		name: "invalid",
		run: func(t *testing.T, g *revguard.Guard[event]) {
			for _, e := range []event{{"", 1}, {"k", 0}} {
				_, err := g.Handle(ctx, e, func(context.Context, event) error {
					t.Error("the handler of a bad event ran")
					return nil
				})
				require.Error(t, err)
				action, _ := revguard.Disposition(err)
				require.Equal(t, revguard.DeadLetter, action)
			}
			_, ok, err := g.Applied(ctx, "k")
			require.NoError(t, err)
			require.False(t, ok, "nothing was recorded")
		},
		want: map[string]int64{failed("claim", "invalid"): 2},
	}, {
		name: "handler",
		run: func(t *testing.T, g *revguard.Guard[event]) {
			_, err := g.Handle(ctx, event{"k", 1}, func(context.Context, event) error { return handlerErr })
			require.ErrorIs(t, err, handlerErr)
		},
		want: map[string]int64{failed("claim", "handler"): 1},
	}, {
		name:  "store down at the claim",
		store: func() revguard.Store { return &faultyStore{Store: memstore.New(), claim: errDown} },
		run: func(t *testing.T, g *revguard.Guard[event]) {
			_, err := g.Handle(ctx, event{"k", 1}, func(context.Context, event) error {
				t.Error("the handler ran without a claim")
				return nil
			})
			require.ErrorIs(t, err, errDown)
		},
		want: map[string]int64{failed("claim", "store"): 1},
	}, {
		name:  "store down at the commit, after the handler ran",
		store: func() revguard.Store { return &faultyStore{Store: memstore.New(), commit: errDown} },
		opts:  []revguard.Option{revguard.WithLease(6 * time.Millisecond)}, // bounds the commit's retries
		run: func(t *testing.T, g *revguard.Guard[event]) {
			_, err := g.Handle(ctx, event{"k", 1}, apply)
			require.ErrorIs(t, err, errDown)
		},
		want: map[string]int64{failed("claim", "store"): 1},
	}, {
		name: "at most once",
		opts: []revguard.Option{revguard.WithMode(revguard.AtMostOnce)},
		run: func(t *testing.T, g *revguard.Guard[event]) {
			_, err := g.Handle(ctx, event{"k", 1}, apply)
			require.NoError(t, err)
		},
		want: map[string]int64{set("atmostonce", "applied", false): 1},
	}, {
		name:  "transactional",
		store: func() revguard.Store { return &txStore{Store: memstore.New()} },
		opts:  []revguard.Option{revguard.WithMode(revguard.Transactional)},
		run: func(t *testing.T, g *revguard.Guard[event]) {
			_, err := g.Handle(ctx, event{"k", 1}, apply)
			require.NoError(t, err)
			_, err = g.Handle(ctx, event{"k", 2}, func(context.Context, event) error { return handlerErr })
			require.ErrorIs(t, err, handlerErr)
		},
		want: map[string]int64{set("transactional", "applied", false): 1, failed("transactional", "handler"): 1},
	}, {
		name:  "transaction that could not begin",
		store: func() revguard.Store { return &txStore{Store: memstore.New(), fail: errDown} },
		opts:  []revguard.Option{revguard.WithMode(revguard.Transactional)},
		run: func(t *testing.T, g *revguard.Guard[event]) {
			_, err := g.Handle(ctx, event{"k", 1}, apply)
			require.ErrorIs(t, err, errDown)
		},
		want: map[string]int64{failed("transactional", "store"): 1},
	}, {
		name: "batch",
		run: func(t *testing.T, g *revguard.Guard[event]) {
			res := g.HandleBatch(ctx, []event{{"a", 1}, {"b", 1}, {"a", 1}, {"", 1}}, apply)
			require.Len(t, res, 4)
		},
		want: map[string]int64{set("claim", "applied", false): 2, set("claim", "duplicate", false): 1, failed("claim", "invalid"): 1},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			tel := newTelemetry(t)
			var store revguard.Store = memstore.New()
			if tc.store != nil {
				store = tc.store()
			}
			opts := append([]revguard.Option{revguard.WithNamespace("ns"), tel.instrument()}, tc.opts...)
			tc.run(t, revguard.New(store, extract, opts...))
			assert.Equal(t, tc.want, tel.decisions(t))
		})
	}
}

func TestHistograms(t *testing.T) {
	ctx := context.Background()
	tel := newTelemetry(t)
	g := revguard.New(memstore.New(), extract, revguard.WithNamespace("ns"), tel.instrument())
	slow := func(context.Context, event) error { time.Sleep(2 * time.Millisecond); return nil }
	for _, e := range []event{{"k", 1}, {"k", 2}, {"k", 2}} {
		_, err := g.Handle(ctx, e, slow)
		require.NoError(t, err)
	}

	assert.Equal(t, map[string]uint64{set("claim", "applied", false): 2, set("claim", "duplicate", false): 1},
		tel.histogram(t, "revguard.decision.duration"))
	assert.Equal(t, map[string]uint64{set("claim", "applied", false): 2},
		tel.histogram(t, "revguard.handler.duration"), "a drop runs no handler")

	h := tel.metric(t, "revguard.handler.duration").(metricdata.Histogram[float64])
	require.Len(t, h.DataPoints, 1)
	dp := h.DataPoints[0]
	assert.Equal(t, []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}, dp.Bounds)
	assert.GreaterOrEqual(t, dp.Sum, 0.004, "two handlers of 2ms, in seconds")
	min, ok := dp.Min.Value()
	require.True(t, ok)
	assert.GreaterOrEqual(t, min, 0.002)
}

func TestConcurrentCalls(t *testing.T) {
	tel := newTelemetry(t)
	g := revguard.New(memstore.New(), extract, revguard.WithNamespace("ns"), revguard.WithBatchConcurrency(4), tel.instrument())
	done := make(chan struct{})
	for w := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 25 {
				key := fmt.Sprintf("k%d-%d", w, i)
				_, err := g.Handle(context.Background(), event{key, 1}, apply)
				assert.NoError(t, err)
				g.HandleBatch(context.Background(), []event{{key, 2}, {key + "x", 1}, {key, 1}}, apply)
			}
		}()
	}
	for range 4 {
		<-done
	}
	assert.Equal(t, map[string]int64{set("claim", "applied", false): 300, set("claim", "stale", false): 100}, tel.decisions(t))
	assert.Len(t, tel.ended("revguard handle"), 100)
	assert.Len(t, tel.ended("revguard batch"), 100)
}
