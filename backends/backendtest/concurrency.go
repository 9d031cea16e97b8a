package backendtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/revguard/revguard"
)

// deliveryTimeout bounds a concurrent test, so that a store that never lets
// a revision through fails it rather than hanging the run.
const deliveryTimeout = 30 * time.Second

// together runs f in n goroutines released at the same moment and returns
// their errors joined.
func together(n int, f func(i int) error) error {
	gate := make(chan struct{})
	errc := make(chan error, n)
	for i := range n {
		go func() {
			<-gate
			errc <- f(i)
		}()
	}
	close(gate)
	var errs []error
	for range n {
		if err := <-errc; err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// deliverAll plays a transport that redelivers until acknowledged: workers
// take events from a queue and put back those for which deliver asks a
// retry, until every event is acknowledged or deliver fails.
func deliverAll(ctx context.Context, workers int, events []event, deliver func(event) (retry bool, err error)) error {
	if len(events) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, deliveryTimeout)
	defer cancel()
	queue := make(chan event, len(events))
	for _, e := range events {
		queue <- e
	}
	var left atomic.Int64
	left.Store(int64(len(events)))
	done := make(chan struct{})
	var once sync.Once
	finish := func() { once.Do(func() { close(done) }) }
	return together(workers, func(int) error {
		for {
			select {
			case <-done:
				return nil
			case <-ctx.Done():
				finish()
				return fmt.Errorf("%d of %d events still unacknowledged: %w", left.Load(), len(events), ctx.Err())
			case e := <-queue:
				retry, err := deliver(e)
				if err != nil {
					finish()
					return err
				}
				if retry {
					queue <- e
					time.Sleep(time.Millisecond)
					continue
				}
				if left.Add(-1) == 0 {
					finish()
				}
			}
		}
	})
}

// shuffled returns every revision of every key, each copies times, in an
// order fixed by seed.
func shuffled(keys []string, revs, copies int, seed uint64) []event {
	var events []event
	for _, k := range keys {
		for r := 1; r <= revs; r++ {
			for range copies {
				events = append(events, event{k, revguard.Revision(r)})
			}
		}
	}
	rng := rand.New(rand.NewPCG(seed, seed))
	rng.Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })
	return events
}

// history records, per key, the revisions whose handler completed, and
// checks that handlers of one key never overlap.
type history struct {
	mu      sync.Mutex
	done    map[string][]revguard.Revision
	running map[string]int
	overlap bool
}

func newHistory() *history {
	return &history{done: map[string][]revguard.Revision{}, running: map[string]int{}}
}

func (hs *history) handler(exclusive bool) revguard.Handler[event] {
	return func(ctx context.Context, e event) error {
		hs.mu.Lock()
		hs.running[e.key]++
		if exclusive && hs.running[e.key] > 1 {
			hs.overlap = true
		}
		hs.mu.Unlock()
		time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
		hs.mu.Lock()
		hs.running[e.key]--
		hs.done[e.key] = append(hs.done[e.key], e.rev)
		hs.mu.Unlock()
		return nil
	}
}

func testSameEvent(t *testing.T, newStore func(*testing.T) revguard.Store) {
	h := start(t, newStore)
	for _, mode := range []revguard.Mode{revguard.Claim, revguard.AtMostOnce} {
		for _, ord := range []revguard.Ordering{revguard.Latest, revguard.Sequential} {
			sameEvent(t, h, mode.String()+"/"+ord.String(), revguard.WithMode(mode), revguard.WithOrdering(ord))
		}
	}
}

// sameEvent delivers one event from 16 goroutines at once: one runs the
// handler, the others are told it is a duplicate or in flight.
func sameEvent(t *testing.T, h *harness, key string, opts ...revguard.Option) {
	t.Helper()
	const n = 16
	g := newGuard(h.s, h.ns, opts...)
	var runs, applied atomic.Int64
	slow := func(context.Context, event) error {
		runs.Add(1)
		time.Sleep(20 * time.Millisecond)
		return nil
	}
	err := together(n, func(int) error {
		out, err := g.Handle(h.ctx(), event{key, 1}, slow)
		switch {
		case err == nil && out == revguard.Applied:
			applied.Add(1)
		case err == nil && out == revguard.Duplicate, errors.Is(err, revguard.ErrInFlight):
		default:
			return fmt.Errorf("handle = %v, %v; want applied, duplicate or ErrInFlight", out, err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	if runs.Load() != 1 || applied.Load() != 1 {
		t.Fatalf("%s: %d deliveries of one event: handler ran %d times, %d applied; want 1 and 1", key, n, runs.Load(), applied.Load())
	}
	h.peek(key, at(1))
}

func testConcurrentLatest(t *testing.T, newStore func(*testing.T) revguard.Store) {
	h := start(t, newStore)
	const revs = 20
	for i, mode := range []revguard.Mode{revguard.Claim, revguard.AtMostOnce} {
		keys := []string{mode.String() + "/a", mode.String() + "/b", mode.String() + "/c"}
		g := newGuard(h.s, h.ns, revguard.WithMode(mode))
		hs := newHistory()
		handler := hs.handler(mode == revguard.Claim)
		var applied atomic.Int64
		err := deliverAll(h.ctx(), 8, shuffled(keys, revs, 2, uint64(i+1)), func(e event) (bool, error) {
			out, err := g.Handle(h.ctx(), e, handler)
			switch {
			case errors.Is(err, revguard.ErrInFlight):
				return true, nil
			case err != nil:
				return false, fmt.Errorf("Handle(%s, %d): %w", e.key, e.rev, err)
			case out == revguard.Applied:
				applied.Add(1)
			}
			return false, nil
		})
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		if hs.overlap {
			t.Errorf("%s: two handlers of one key ran at the same time", mode)
		}
		total := 0
		for _, k := range keys {
			done := hs.done[k]
			total += len(done)
			if mode == revguard.Claim && !strictlyIncreasing(done) {
				t.Errorf("%s: handlers of %s completed in the order %v; want strictly increasing", mode, k, done)
			}
			if !distinct(done) {
				t.Errorf("%s: a revision of %s was handled twice: %v", mode, k, done)
			}
			h.peek(k, at(revs))
		}
		if int64(total) != applied.Load() {
			t.Errorf("%s: %d handler runs but %d events applied", mode, total, applied.Load())
		}
	}
}

func testConcurrentSequential(t *testing.T, newStore func(*testing.T) revguard.Store) {
	h := start(t, newStore)
	const revs = 10
	for i, mode := range []revguard.Mode{revguard.Claim, revguard.AtMostOnce} {
		keys := []string{mode.String() + "/a", mode.String() + "/b", mode.String() + "/c"}
		g := newGuard(h.s, h.ns, revguard.WithMode(mode), revguard.WithOrdering(revguard.Sequential))
		hs := newHistory()
		handler := hs.handler(mode == revguard.Claim)
		err := deliverAll(h.ctx(), 6, shuffled(keys, revs, 2, uint64(i+10)), func(e event) (bool, error) {
			_, err := g.Handle(h.ctx(), e, handler)
			switch {
			case errors.Is(err, revguard.ErrInFlight), errors.Is(err, revguard.ErrGap):
				return true, nil
			case err != nil:
				return false, fmt.Errorf("Handle(%s, %d): %w", e.key, e.rev, err)
			}
			return false, nil
		})
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		if hs.overlap {
			t.Errorf("%s: two handlers of one key ran at the same time", mode)
		}
		want := make([]revguard.Revision, revs)
		for r := range want {
			want[r] = revguard.Revision(r + 1)
		}
		for _, k := range keys {
			done := hs.done[k]
			if mode == revguard.AtMostOnce {
				// Advances are ordered, but a handler may finish after the
				// next one started.
				done = slices.Sorted(slices.Values(done))
			}
			if !slices.Equal(done, want) {
				t.Errorf("%s: handlers of %s completed %v; want %v", mode, k, hs.done[k], want)
			}
			h.peek(k, at(revs))
		}
	}
}

func strictlyIncreasing(revs []revguard.Revision) bool {
	for i := 1; i < len(revs); i++ {
		if revs[i] <= revs[i-1] {
			return false
		}
	}
	return true
}

func distinct(revs []revguard.Revision) bool {
	seen := map[revguard.Revision]bool{}
	for _, r := range revs {
		if seen[r] {
			return false
		}
		seen[r] = true
	}
	return true
}
