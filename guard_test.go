package revguard_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
)

type event struct {
	Key string
	Rev revguard.Revision
	Err error // what the extractor returns, for bad-input tests
}

func extract(e event) (string, revguard.Revision, error) { return e.Key, e.Rev, e.Err }

// countingStore counts the calls that reach the store.
type countingStore struct {
	revguard.Store
	mu    sync.Mutex
	calls map[string]int
}

func newCounting() *countingStore {
	return &countingStore{Store: memstore.New(), calls: map[string]int{}}
}

func (c *countingStore) count(op string) {
	c.mu.Lock()
	c.calls[op]++
	c.mu.Unlock()
}

func (c *countingStore) n(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[op]
}

func (c *countingStore) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.calls {
		n += v
	}
	return n
}

func (c *countingStore) Claim(ctx context.Context, r revguard.Request) (revguard.Reply, error) {
	c.count("claim")
	return c.Store.Claim(ctx, r)
}

func (c *countingStore) ClaimBatch(ctx context.Context, r []revguard.Request) ([]revguard.Reply, error) {
	c.count("claimbatch")
	return c.Store.ClaimBatch(ctx, r)
}

func (c *countingStore) Commit(ctx context.Context, ns, key string, t revguard.Token) error {
	c.count("commit")
	return c.Store.Commit(ctx, ns, key, t)
}

func (c *countingStore) CommitBatch(ctx context.Context, cs []revguard.Commit) ([]error, error) {
	c.count("commitbatch")
	return c.Store.CommitBatch(ctx, cs)
}

func (c *countingStore) Release(ctx context.Context, ns, key string, t revguard.Token) error {
	c.count("release")
	return c.Store.Release(ctx, ns, key, t)
}

func (c *countingStore) Renew(ctx context.Context, ns, key string, t revguard.Token, d time.Duration) error {
	c.count("renew")
	return c.Store.Renew(ctx, ns, key, t, d)
}

func (c *countingStore) Peek(ctx context.Context, ns, key string) (revguard.State, error) {
	c.count("peek")
	return c.Store.Peek(ctx, ns, key)
}

// recorder is a handler that records what it ran.
type recorder struct {
	mu  sync.Mutex
	ran []event
}

func (r *recorder) handle(_ context.Context, e event) error {
	r.mu.Lock()
	r.ran = append(r.ran, e)
	r.mu.Unlock()
	return nil
}

func (r *recorder) revs() []revguard.Revision {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []revguard.Revision
	for _, e := range r.ran {
		out = append(out, e.Rev)
	}
	return out
}

func TestHandleOutcomes(t *testing.T) {
	for _, mode := range []revguard.Mode{revguard.Claim, revguard.AtMostOnce} {
		t.Run(mode.String(), func(t *testing.T) {
			ctx := context.Background()
			g := revguard.New(memstore.New(), extract, revguard.WithMode(mode))
			var rec recorder
			for _, c := range []struct {
				rev  revguard.Revision
				want revguard.Outcome
			}{{5, revguard.Applied}, {5, revguard.Duplicate}, {3, revguard.Stale}, {6, revguard.Applied}, {math.MaxUint64, revguard.Applied}, {1 << 63, revguard.Stale}} {
				out, err := g.Handle(ctx, event{Key: "k", Rev: c.rev}, rec.handle)
				require.NoError(t, err)
				assert.Equal(t, c.want, out, "revision %d", c.rev)
			}
			assert.Equal(t, []revguard.Revision{5, 6, math.MaxUint64}, rec.revs())
			rev, ok, err := g.Applied(ctx, "k")
			require.NoError(t, err)
			assert.True(t, ok)
			assert.Equal(t, revguard.Revision(math.MaxUint64), rev)
			assert.Equal(t, revguard.Stats{Applied: 3, Duplicate: 1, Stale: 2}, g.Stats())
		})
	}
}

func TestBadInputNeverReachesStoreOrHandler(t *testing.T) {
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	nowRev, _ := revguard.Timestamp(now)
	extractErr := errors.New("no id field")
	for _, c := range []struct {
		name string
		ev   event
		want error
	}{
		{"empty key", event{Key: ""}, revguard.ErrInvalidKey},
		{"long key", event{Key: strings.Repeat("k", 4097)}, revguard.ErrInvalidKey},
		{"not utf-8", event{Key: "\xc3\x28"}, revguard.ErrInvalidKey},
		{"extractor key error", event{Key: "k", Err: revguard.ErrInvalidKey}, revguard.ErrInvalidKey},
		{"extractor revision error", event{Key: "k", Err: revguard.ErrInvalidRevision}, revguard.ErrInvalidRevision},
		{"extractor other error", event{Key: "k", Err: extractErr}, extractErr},
		{"future timestamp", event{Key: "k", Rev: nowRev + revguard.Revision(time.Hour)}, revguard.ErrInvalidRevision},
		{"poison", event{Key: "k", Rev: math.MaxUint64}, revguard.ErrInvalidRevision},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newCounting()
			g := revguard.New(s, extract, revguard.WithMaxFutureSkew(time.Minute), revguard.WithClock(func() time.Time { return now }))
			ran := false
			out, err := g.Handle(context.Background(), c.ev, func(context.Context, event) error { ran = true; return nil })
			assert.ErrorIs(t, err, c.want)
			assert.Zero(t, out)
			assert.False(t, ran)
			assert.Zero(t, s.total(), "no store call")
			assert.Equal(t, uint64(1), g.Stats().Invalid)
			if errors.Is(c.want, extractErr) {
				assert.ErrorIs(t, err, revguard.ErrInvalidEvent)
			}
			_, err = g.Check(context.Background(), c.ev)
			assert.ErrorIs(t, err, c.want)
			assert.Zero(t, s.total())
		})
	}
	t.Run("nil handler", func(t *testing.T) {
		s := newCounting()
		g := revguard.New(s, extract)
		_, err := g.Handle(context.Background(), event{Key: "k", Rev: 1}, nil)
		assert.ErrorContains(t, err, "nil handler")
		assert.Zero(t, s.total())
	})
}

// TestMaxStep checks what the guard adds to the store's TooFar: the error
// a consumer sees names the bound. (The conformance suite checks the
// decision on every store.)
func TestMaxStep(t *testing.T) {
	ctx := context.Background()
	g := revguard.New(memstore.New(), extract, revguard.WithMaxStep(10))
	h := func(context.Context, event) error { return nil }
	_, err := g.Handle(ctx, event{Key: "k", Rev: 1000}, h)
	require.NoError(t, err)
	_, err = g.Handle(ctx, event{Key: "k", Rev: 1011}, h)
	assert.ErrorIs(t, err, revguard.ErrInvalidRevision)
	assert.ErrorContains(t, err, "WithMaxStep(10)")
}

// TestSequential checks what the guard adds to the store's Gap: the error
// names the revision awaited, and WithFirstRevision sets where an entity
// starts. (The conformance suite checks the decisions on every store.)
func TestSequential(t *testing.T) {
	ctx := context.Background()
	g := revguard.New(memstore.New(), extract, revguard.WithOrdering(revguard.Sequential))
	var rec recorder
	_, err := g.Handle(ctx, event{Key: "acct", Rev: 2}, rec.handle)
	assert.ErrorIs(t, err, revguard.ErrGap)
	assert.ErrorContains(t, err, "must wait for revision 1")

	g0 := revguard.New(memstore.New(), extract, revguard.WithOrdering(revguard.Sequential), revguard.WithFirstRevision(0))
	_, err = g0.Handle(ctx, event{Key: "acct", Rev: 1}, rec.handle)
	assert.ErrorContains(t, err, "must wait for revision 0")
	out, err := g0.Handle(ctx, event{Key: "acct", Rev: 0}, rec.handle)
	require.NoError(t, err)
	assert.Equal(t, revguard.Applied, out)
	assert.Equal(t, []revguard.Revision{0}, rec.revs())
}

func TestHandlerFailureIsRetried(t *testing.T) {
	ctx := context.Background()
	s := newCounting()
	g := revguard.New(s, extract)
	boom := errors.New("boom")
	runs := 0
	h := func(context.Context, event) error {
		runs++
		if runs == 1 {
			return boom
		}
		return nil
	}
	_, err := g.Handle(ctx, event{Key: "k", Rev: 1}, h)
	assert.Same(t, boom, err, "the handler's error comes back as it is")
	assert.Equal(t, 1, s.n("release"))
	out, err := g.Handle(ctx, event{Key: "k", Rev: 1}, h)
	require.NoError(t, err)
	assert.Equal(t, revguard.Applied, out)
	assert.Equal(t, 2, runs)
}

func TestInFlight(t *testing.T) {
	ctx := context.Background()
	g := revguard.New(memstore.New(), extract)
	inside, release := make(chan struct{}), make(chan struct{})
	done := make(chan error)
	go func() {
		_, err := g.Handle(ctx, event{Key: "k", Rev: 1}, func(context.Context, event) error {
			close(inside)
			<-release
			return nil
		})
		done <- err
	}()
	<-inside
	_, err := g.Handle(ctx, event{Key: "k", Rev: 1}, func(context.Context, event) error { return nil })
	assert.ErrorIs(t, err, revguard.ErrInFlight)
	_, err = g.Handle(ctx, event{Key: "k", Rev: 2}, func(context.Context, event) error { return nil })
	assert.ErrorIs(t, err, revguard.ErrInFlight, "one handler per entity at a time")
	close(release)
	require.NoError(t, <-done)
	assert.Equal(t, uint64(2), g.Stats().InFlight)
}

func TestLeaseRenewedWhileHandlerRuns(t *testing.T) {
	ctx := context.Background()
	s := newCounting()
	g := revguard.New(s, extract, revguard.WithLease(60*time.Millisecond))
	out, err := g.Handle(ctx, event{Key: "k", Rev: 1}, func(ctx context.Context, _ event) error {
		select {
		case <-time.After(250 * time.Millisecond):
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	})
	require.NoError(t, err)
	assert.Equal(t, revguard.Applied, out)
	assert.GreaterOrEqual(t, s.n("renew"), 3)
}

// On an InProcess store the guard keeps no lease: a claim lost to a repair
// while the handler runs is caught by the commit, which the store fences.
func TestInProcessClaimLostAtCommit(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	g := revguard.New(s, extract, revguard.WithLease(30*time.Millisecond))
	_, err := g.Handle(ctx, event{Key: "k", Rev: 7}, func(ctx context.Context, _ event) error {
		require.NoError(t, s.Set(context.Background(), "", "k", 3))
		time.Sleep(60 * time.Millisecond) // past the lease: nothing expires in process
		return ctx.Err()
	})
	assert.ErrorIs(t, err, revguard.ErrLeaseLost)
	st, _ := s.Peek(ctx, "", "k")
	assert.Equal(t, revguard.Revision(3), st.Applied, "the old holder committed nothing")
	out, err := g.Handle(ctx, event{Key: "k", Rev: 7}, func(context.Context, event) error { return nil })
	require.NoError(t, err, "the failed commit released nothing it did not hold")
	assert.Equal(t, revguard.Applied, out)
}

// A claim on an InProcess store outlives the lease while its handler runs:
// a second delivery meanwhile is in flight, not run beside it.
func TestInProcessClaimOutlivesLease(t *testing.T) {
	ctx := context.Background()
	g := revguard.New(memstore.New(), extract, revguard.WithLease(3*time.Millisecond))
	started, done := make(chan struct{}), make(chan error, 1)
	go func() {
		_, err := g.Handle(ctx, event{Key: "k", Rev: 1}, func(context.Context, event) error {
			close(started)
			time.Sleep(30 * time.Millisecond)
			return nil
		})
		done <- err
	}()
	<-started
	time.Sleep(10 * time.Millisecond)
	_, err := g.Handle(ctx, event{Key: "k", Rev: 1}, func(context.Context, event) error { return errors.New("ran beside the first") })
	assert.ErrorIs(t, err, revguard.ErrInFlight)
	require.NoError(t, <-done)
}

func TestCheckIsReadOnly(t *testing.T) {
	ctx := context.Background()
	s := newCounting()
	g := revguard.New(s, extract)
	out, err := g.Check(ctx, event{Key: "k", Rev: 2})
	require.NoError(t, err)
	assert.Equal(t, revguard.Applied, out)
	_, ok, _ := g.Applied(ctx, "k")
	assert.False(t, ok)
	require.NoError(t, g.SetApplied(ctx, "k", 2))
	out, _ = g.Check(ctx, event{Key: "k", Rev: 2})
	assert.Equal(t, revguard.Duplicate, out)
	out, _ = g.Check(ctx, event{Key: "k", Rev: 1})
	assert.Equal(t, revguard.Stale, out)
	require.NoError(t, g.Forget(ctx, "k"))
	out, _ = g.Check(ctx, event{Key: "k", Rev: 1})
	assert.Equal(t, revguard.Applied, out)
	assert.Zero(t, s.n("claim"))
	assert.ErrorIs(t, g.SetApplied(ctx, "", 1), revguard.ErrInvalidKey)
}

func TestNewPanics(t *testing.T) {
	assert.PanicsWithValue(t, "revguard: New: nil Store", func() { revguard.New[event](nil, extract) })
	assert.PanicsWithValue(t, "revguard: New: nil Extractor", func() { revguard.New[event](memstore.New(), nil) })
	assert.PanicsWithValue(t,
		"revguard: New: mode Transactional needs a store with transactions, and *memstore.Store has none (use sqlstore, or mode Claim)",
		func() { revguard.New(memstore.New(), extract, revguard.WithMode(revguard.Transactional)) })
	assert.Panics(t, func() { revguard.WithLease(0) })
	assert.Panics(t, func() { revguard.WithMaxStep(0) })
	assert.Panics(t, func() { revguard.WithNamespace(strings.Repeat("n", 256)) })
	assert.Panics(t, func() { revguard.New(memstore.New(), extract).Wrap(nil) })
}

func TestObserverAndLogger(t *testing.T) {
	ctx := context.Background()
	var seen []revguard.Decision
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	g := revguard.New(memstore.New(), extract, revguard.WithNamespace("ns"),
		revguard.WithObserver(func(d revguard.Decision) { seen = append(seen, d) }), revguard.WithLogger(logger))
	h := func(context.Context, event) error { return nil }
	_, _ = g.Handle(ctx, event{Key: "k", Rev: 2}, h)
	_, _ = g.Handle(ctx, event{Key: "k", Rev: 1}, h)
	_, _ = g.Handle(ctx, event{Key: ""}, h)
	require.Len(t, seen, 3)
	assert.Equal(t, revguard.Decision{Namespace: "ns", Key: "k", Revision: 2, Outcome: revguard.Applied, Duration: seen[0].Duration,
		Mode: revguard.Claim, HandlerTime: seen[0].HandlerTime}, seen[0])
	assert.Positive(t, seen[0].HandlerTime, "the handler ran")
	assert.LessOrEqual(t, seen[0].HandlerTime, seen[0].Duration)
	assert.Equal(t, revguard.State{Applied: 2, Exists: true}, seen[1].Applied)
	assert.Zero(t, seen[1].HandlerTime, "a drop runs no handler")
	assert.Equal(t, revguard.Stale, seen[1].Outcome)
	assert.ErrorIs(t, seen[2].Err, revguard.ErrInvalidKey)
	logs := buf.String()
	assert.Contains(t, logs, "level=DEBUG msg=\"revguard: applied\"")
	assert.Contains(t, logs, "level=INFO msg=\"revguard: stale\"", "drops are expected behaviour, logged at Info")
	assert.Contains(t, logs, "level=WARN msg=\"revguard: not acknowledged\"")
}

func TestWrap(t *testing.T) {
	ctx := context.Background()
	g := revguard.New(memstore.New(), extract)
	var runs atomic.Int32
	h := g.Wrap(func(context.Context, event) error { runs.Add(1); return nil })
	require.NoError(t, h(ctx, event{Key: "k", Rev: 1}))
	require.NoError(t, h(ctx, event{Key: "k", Rev: 1}), "a duplicate is acknowledged")
	assert.ErrorIs(t, h(ctx, event{Key: ""}), revguard.ErrInvalidKey)
	assert.Equal(t, int32(1), runs.Load())
}

func TestCommitAfterCallerCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	g := revguard.New(memstore.New(), extract)
	out, err := g.Handle(ctx, event{Key: "k", Rev: 1}, func(context.Context, event) error {
		cancel() // the consumer is shutting down, but this handler finished its work
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, revguard.Applied, out)
	out, _ = g.Handle(context.Background(), event{Key: "k", Rev: 1}, func(context.Context, event) error { return nil })
	assert.Equal(t, revguard.Duplicate, out)
}

// flakyCommit fails the first n commits as an unreachable store would.
type flakyCommit struct {
	revguard.Store
	n atomic.Int32
}

func (f *flakyCommit) Commit(ctx context.Context, ns, key string, t revguard.Token) error {
	if f.n.Add(-1) >= 0 {
		return errors.New("connection refused")
	}
	return f.Store.Commit(ctx, ns, key, t)
}

func (f *flakyCommit) CommitBatch(ctx context.Context, cs []revguard.Commit) ([]error, error) {
	if f.n.Add(-1) >= 0 {
		return nil, errors.New("connection refused")
	}
	return f.Store.CommitBatch(ctx, cs)
}

func TestCommitBatchRetriedThroughShortOutage(t *testing.T) {
	ctx := context.Background()
	s := &flakyCommit{Store: memstore.New()}
	s.n.Store(3)
	g := revguard.New(s, extract, revguard.WithLease(2*time.Second))
	runs := 0
	h := func(_ context.Context, e event) error {
		runs++
		if e.Key == "bad" {
			return errors.New("handler failed")
		}
		return nil
	}
	batch := []event{{Key: "a", Rev: 1}, {Key: "b", Rev: 1}, {Key: "bad", Rev: 1}}
	res := g.HandleBatch(ctx, batch, h)
	require.NoError(t, res[0].Err, "the handlers' work is done: the commit is retried while the lease holds")
	require.NoError(t, res[1].Err)
	require.Error(t, res[2].Err)
	assert.Equal(t, []string{"applied", "applied", "err"}, outcomes(res))
	// The failed handler's claim was released: its redelivery runs at once.
	res = g.HandleBatch(ctx, batch, h)
	assert.Equal(t, []string{"duplicate", "duplicate", "err"}, outcomes(res))
	assert.Equal(t, 4, runs)

	s.n.Store(1000)
	res = revguard.New(s, extract, revguard.WithLease(60*time.Millisecond)).HandleBatch(ctx, []event{{Key: "c", Rev: 1}}, h)
	assert.ErrorContains(t, res[0].Err, "connection refused", "an outage longer than the lease is an error")
}

func TestCommitRetriedThroughShortOutage(t *testing.T) {
	ctx := context.Background()
	s := &flakyCommit{Store: memstore.New()}
	s.n.Store(3)
	g := revguard.New(s, extract, revguard.WithLease(2*time.Second))
	runs := 0
	out, err := g.Handle(ctx, event{Key: "k", Rev: 1}, func(context.Context, event) error { runs++; return nil })
	require.NoError(t, err, "the handler's work is done: the commit is retried while the lease holds")
	assert.Equal(t, revguard.Applied, out)
	out, _ = g.Handle(ctx, event{Key: "k", Rev: 1}, func(context.Context, event) error { runs++; return nil })
	assert.Equal(t, revguard.Duplicate, out)
	assert.Equal(t, 1, runs)

	s.n.Store(1000)
	_, err = revguard.New(s, extract, revguard.WithLease(60*time.Millisecond)).
		Handle(ctx, event{Key: "j", Rev: 1}, func(context.Context, event) error { return nil })
	assert.ErrorContains(t, err, "connection refused", "an outage longer than the lease is an error")
}

// The keeper's goroutine exits when no lease is registered and a new claim
// starts it again: a claim made while it is exiting must still be renewed.
func TestLeaseRenewedAcrossKeeperRestarts(t *testing.T) {
	ctx := context.Background()
	g := revguard.New(memstore.New(), extract, revguard.WithLease(30*time.Millisecond))
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 40 {
		// Short claims let the keeper go idle; a long one now and then
		// must be renewed by whichever loop is running.
		long := i%8 == 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := g.Handle(ctx, event{Key: fmt.Sprint("k", i), Rev: 1}, func(ctx context.Context, _ event) error {
				if !long {
					return nil
				}
				select {
				case <-time.After(120 * time.Millisecond):
					return nil
				case <-ctx.Done():
					return context.Cause(ctx)
				}
			})
			if err != nil {
				errs <- err
			}
		}()
		time.Sleep(time.Duration(i%5) * 4 * time.Millisecond)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
