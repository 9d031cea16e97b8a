package revguard_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
)

// gatedStore holds its first Claim until open is closed, so that the calls
// arriving meanwhile queue behind it, and records the size of every claim
// call that reaches it.
type gatedStore struct {
	revguard.Store
	open    chan struct{}
	first   atomic.Bool
	entered chan struct{}

	mu     sync.Mutex
	claims []int // requests per call, in order
}

func newGated() *gatedStore {
	return &gatedStore{Store: memstore.New(), open: make(chan struct{}), entered: make(chan struct{})}
}

func (s *gatedStore) note(n int) {
	s.mu.Lock()
	s.claims = append(s.claims, n)
	s.mu.Unlock()
}

func (s *gatedStore) sizes() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.claims...)
}

func (s *gatedStore) Claim(ctx context.Context, r revguard.Request) (revguard.Reply, error) {
	s.note(1)
	if s.first.CompareAndSwap(false, true) {
		close(s.entered)
		<-s.open
	}
	return s.Store.Claim(ctx, r)
}

func (s *gatedStore) ClaimBatch(ctx context.Context, rs []revguard.Request) ([]revguard.Reply, error) {
	s.note(len(rs))
	return s.Store.ClaimBatch(ctx, rs)
}

// waitQueued waits until n callers have queued behind the gated call: they
// are then blocked in the guard, which a test cannot see directly, so it
// waits until their goroutines have had ample time to get there.
func waitQueued(t *testing.T, started *sync.WaitGroup) {
	t.Helper()
	started.Wait()
	time.Sleep(50 * time.Millisecond)
}

func TestConcurrentHandleCallsShareOneClaim(t *testing.T) {
	s := newGated()
	g := revguard.New(s, extract)
	ctx := context.Background()
	first := make(chan error, 1)
	go func() {
		_, err := g.Handle(ctx, event{Key: "lead", Rev: 1}, nop)
		first <- err
	}()
	<-s.entered
	const n = 8
	var started, done sync.WaitGroup
	outs := make([]revguard.Outcome, n)
	errs := make([]error, n)
	for i := range n {
		started.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			started.Done()
			outs[i], errs[i] = g.Handle(ctx, event{Key: fmt.Sprint("k", i), Rev: 1}, nop)
		}()
	}
	waitQueued(t, &started)
	close(s.open)
	done.Wait()
	require.NoError(t, <-first)
	for i := range n {
		require.NoError(t, errs[i])
		assert.Equal(t, revguard.Applied, outs[i])
	}
	assert.Equal(t, []int{1, n}, s.sizes(), "the lone first call went alone; the callers that came meanwhile shared one")
	assert.Equal(t, uint64(n+1), g.Stats().Applied)
}

func TestCoalescedDeliveriesOfOneEntity(t *testing.T) {
	for _, mode := range []revguard.Mode{revguard.Claim, revguard.AtMostOnce} {
		t.Run(mode.String(), func(t *testing.T) {
			s := newGated()
			g := revguard.New(s, extract, revguard.WithMode(mode))
			ctx := context.Background()
			release := make(chan struct{})
			first := make(chan error, 1)
			go func() {
				_, err := g.Handle(ctx, event{Key: "lead", Rev: 1}, nop)
				first <- err
			}()
			<-s.entered
			var started, done sync.WaitGroup
			var runs atomic.Int32
			outs := make([]revguard.Outcome, 2)
			errs := make([]error, 2)
			for i := range 2 {
				started.Add(1)
				done.Add(1)
				go func() {
					defer done.Done()
					started.Done()
					outs[i], errs[i] = g.Handle(ctx, event{Key: "same", Rev: 5}, func(context.Context, event) error {
						runs.Add(1)
						<-release // hold the claim while the copy is decided
						return nil
					})
				}()
			}
			waitQueued(t, &started)
			close(s.open)
			// The copy is decided while the first holds its claim (or has
			// advanced): never two Applied.
			time.Sleep(50 * time.Millisecond)
			close(release)
			done.Wait()
			require.NoError(t, <-first)
			applied, other := 0, 0
			for i := range 2 {
				switch {
				case errs[i] == nil && outs[i] == revguard.Applied:
					applied++
				case mode == revguard.Claim && errors.Is(errs[i], revguard.ErrInFlight):
					other++
				case mode == revguard.AtMostOnce && errs[i] == nil && outs[i] == revguard.Duplicate:
					other++
				default:
					t.Errorf("delivery %d: %v, %v", i, outs[i], errs[i])
				}
			}
			assert.Equal(t, 1, applied)
			assert.Equal(t, 1, other)
			assert.Equal(t, int32(1), runs.Load())
			for _, n := range s.sizes() {
				assert.LessOrEqual(t, n, 1, "two requests for one entity never share a call")
			}
		})
	}
}

// A caller whose context ends while it waits to send leaves, having sent
// nothing; the others' requests go on.
func TestCoalescedCallerCancelled(t *testing.T) {
	s := newGated()
	g := revguard.New(s, extract)
	bg := context.Background()
	first := make(chan error, 1)
	go func() {
		_, err := g.Handle(bg, event{Key: "lead", Rev: 1}, nop)
		first <- err
	}()
	<-s.entered
	ctx, cancel := context.WithCancel(bg)
	var started, done sync.WaitGroup
	var cancelledErr, otherErr error
	var otherOut revguard.Outcome
	started.Add(2)
	done.Add(2)
	go func() {
		defer done.Done()
		started.Done()
		_, cancelledErr = g.Handle(ctx, event{Key: "gone", Rev: 1}, nop)
	}()
	go func() {
		defer done.Done()
		started.Done()
		otherOut, otherErr = g.Handle(bg, event{Key: "stays", Rev: 1}, nop)
	}()
	waitQueued(t, &started)
	cancel()
	time.Sleep(20 * time.Millisecond)
	close(s.open)
	done.Wait()
	require.NoError(t, <-first)
	assert.ErrorIs(t, cancelledErr, context.Canceled)
	require.NoError(t, otherErr)
	assert.Equal(t, revguard.Applied, otherOut)
	_, ok, err := g.Applied(bg, "gone")
	require.NoError(t, err)
	assert.False(t, ok, "the cancelled caller's request was never sent")
}

func TestWithoutCoalescing(t *testing.T) {
	s := newGated()
	g := revguard.New(s, extract, revguard.WithoutCoalescing())
	ctx := context.Background()
	go func() { _, _ = g.Handle(ctx, event{Key: "lead", Rev: 1}, nop) }()
	<-s.entered
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := g.Handle(ctx, event{Key: fmt.Sprint("k", i), Rev: 1}, nop)
			assert.NoError(t, err)
		}()
	}
	wg.Wait() // none waited for the gated call
	close(s.open)
	assert.Equal(t, []int{1, 1, 1, 1, 1}, s.sizes())
}

func TestBatchConcurrency(t *testing.T) {
	ctx := context.Background()
	g := revguard.New(newCounting(), extract, revguard.WithBatchConcurrency(4))
	var running, most atomic.Int32
	var mu sync.Mutex
	order := map[string][]revguard.Revision{}
	h := func(_ context.Context, e event) error {
		n := running.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(5 * time.Millisecond)
		mu.Lock()
		order[e.Key] = append(order[e.Key], e.Rev)
		mu.Unlock()
		running.Add(-1)
		return nil
	}
	var events []event
	for i := range 12 {
		events = append(events, event{Key: fmt.Sprint("k", i%6), Rev: revguard.Revision(3 - i/6)})
	}
	g2 := revguard.New(newCounting(), extract, revguard.WithBatchConcurrency(4), revguard.WithOrdering(revguard.Sequential))
	for i, r := range g.HandleBatch(ctx, events, h) {
		require.NoError(t, r.Err, i)
	}
	assert.Equal(t, int32(4), most.Load(), "up to four handlers at once")

	order = map[string][]revguard.Revision{}
	var seq []event
	for i := range 12 {
		seq = append(seq, event{Key: fmt.Sprint("s", i%4), Rev: revguard.Revision(3 - i/4)})
	}
	for i, r := range g2.HandleBatch(ctx, seq, h) {
		require.NoError(t, r.Err, i)
		assert.Equal(t, revguard.Applied, r.Outcome)
	}
	for k, revs := range order {
		assert.Equal(t, []revguard.Revision{1, 2, 3}, revs, "%s ran in revision order", k)
	}
}

func TestBatchConcurrencyPanicReleasesClaims(t *testing.T) {
	ctx := context.Background()
	g := revguard.New(newCounting(), extract, revguard.WithBatchConcurrency(3))
	batch := []event{{Key: "a", Rev: 1}, {Key: "b", Rev: 1}, {Key: "c", Rev: 1}}
	func() {
		defer func() { assert.Equal(t, "kaput", recover()) }()
		g.HandleBatch(ctx, batch, func(_ context.Context, e event) error {
			if e.Key == "b" {
				panic("kaput")
			}
			return nil
		})
	}()
	rs := g.HandleBatch(ctx, batch, nop)
	assert.Equal(t, []string{"applied", "applied", "applied"}, outcomes(rs), "every claim was released")
}
