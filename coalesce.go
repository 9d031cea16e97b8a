package revguard

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// A lane sends one kind of store call (claims, or commits) for every
// concurrent caller of one guard, so that callers arriving while a call is
// in flight share the next one: natural batching, as a database's group
// commit does it. A caller that finds the lane idle sends its own call at
// once, from its own goroutine: there is no timer and no flushing goroutine,
// so a lone caller pays two uncontended lock round trips and nothing else.
// When the call in flight returns, the first waiter becomes the leader: it
// sends one batch call for itself and the waiters queued behind it, hands
// each its answer, and passes the lane on. Only single requests (Handle's)
// are shared; a HandleBatch round is a batch already and goes on its own.
//
// One batch call never names an entity twice (stores require distinct
// entities in a batch): a waiter whose entity is already in the call stays
// queued for the next one, where the store decides it after the first,
// exactly as two separate calls would be decided.
type lane[Q, A any] struct {
	key  func(*Q) string
	one  func(context.Context, Q) (A, error)
	many func(context.Context, []Q) ([]A, error)
	off  bool // every caller sends its own call

	mu    sync.Mutex
	busy  bool // a call is in flight
	queue []*waiter[Q, A]
	seen  map[string]struct{} // next's scratch
}

// maxShared bounds the requests of one shared call: enough to amortise a
// round trip, few enough that no caller waits behind a huge call.
const maxShared = 512

// A waiter is one caller queued on a lane.
type waiter[Q, A any] struct {
	ctx   context.Context
	q     Q
	a     A
	err   error
	lead  []*waiter[Q, A] // set when this waiter is to send the next call
	ready chan struct{}
}

func newLane[Q, A any](key func(*Q) string, one func(context.Context, Q) (A, error), many func(context.Context, []Q) ([]A, error), off bool) *lane[Q, A] {
	return &lane[Q, A]{key: key, one: one, many: many, off: off, seen: map[string]struct{}{}}
}

// call sends q, alone or with other callers' requests, and returns its
// answer. A caller whose context ends while it waits returns the context's
// error, having sent nothing; once its request is on its way it waits for
// the answer, which the store gives as its contract says (a shared call is
// cancelled only when every caller's context has ended). It takes q by
// value, so that a lone caller's request stays on its stack.
func (l *lane[Q, A]) call(ctx context.Context, q Q) (A, error) {
	if l.off || l.enter() {
		a, err := l.one(ctx, q)
		l.exit()
		return a, err
	}
	return l.wait(ctx, q)
}

// batch sends qs, a batch already (a HandleBatch round), in one store call
// of its own, beside the lane's shared calls: merging batches would only
// trade their parallel round trips for a longer one.
func (l *lane[Q, A]) batch(ctx context.Context, qs []Q, as []A) error {
	switch len(qs) {
	case 0:
		return nil
	case 1:
		var err error
		as[0], err = l.one(ctx, qs[0])
		return err
	}
	res, err := l.many(ctx, qs)
	if err != nil {
		return err
	}
	if len(res) != len(qs) {
		return fmt.Errorf("store answered %d results for %d requests", len(res), len(qs))
	}
	copy(as, res)
	return nil
}

// enter reports whether the lane was idle, and takes it if so; otherwise
// it returns with l.mu held, for wait to queue the caller.
func (l *lane[Q, A]) enter() bool {
	l.mu.Lock()
	if l.busy {
		return false
	}
	l.busy = true
	l.mu.Unlock()
	return true
}

func (l *lane[Q, A]) exit() {
	if !l.off {
		l.next()
	}
}

// wait queues q (l.mu held, released here) until a call answers it.
func (l *lane[Q, A]) wait(ctx context.Context, q Q) (A, error) {
	w := &waiter[Q, A]{ctx: ctx, q: q, ready: make(chan struct{}, 1)}
	l.queue = append(l.queue, w)
	l.mu.Unlock()
	select {
	case <-w.ready:
	case <-ctx.Done():
		l.mu.Lock()
		if i := slices.Index(l.queue, w); i >= 0 {
			l.queue = slices.Delete(l.queue, i, i+1)
			l.mu.Unlock()
			var zero A
			return zero, fmt.Errorf("waiting to send: %w", context.Cause(ctx))
		}
		l.mu.Unlock()
		<-w.ready // already taken into a call: its answer decides
	}
	if w.lead != nil {
		l.lead(w.lead)
	}
	return w.a, w.err
}

// next passes the lane to the first waiter, with the waiters that can share
// its call, or marks it idle.
func (l *lane[Q, A]) next() {
	l.mu.Lock()
	if len(l.queue) == 0 {
		l.busy = false
		l.mu.Unlock()
		return
	}
	var batch []*waiter[Q, A]
	rest := l.queue[:0]
	for _, w := range l.queue {
		k := l.key(&w.q)
		if _, clash := l.seen[k]; clash || len(batch) == maxShared {
			rest = append(rest, w)
			continue
		}
		l.seen[k] = struct{}{}
		batch = append(batch, w)
	}
	clear(l.seen)
	clear(l.queue[len(rest):])
	l.queue = rest
	l.mu.Unlock()
	batch[0].lead = batch
	batch[0].ready <- struct{}{}
}

// lead sends one call for batch, whose first waiter is the caller, answers
// every waiter and passes the lane on.
func (l *lane[Q, A]) lead(batch []*waiter[Q, A]) {
	answered := false
	defer func() {
		if !answered { // the store panicked: fail the others, let the panic go on
			for _, w := range batch[1:] {
				w.err = errors.New("revguard: a store call shared with this one panicked")
				w.ready <- struct{}{}
			}
			l.next()
		}
	}()
	qs, as := make([]Q, len(batch)), make([]A, len(batch))
	for i, w := range batch {
		qs[i] = w.q
	}
	ctx, cancel := shared(batch)
	err := l.batch(ctx, qs, as) // one request goes as a single call
	cancel()
	for i, w := range batch {
		w.a, w.err = as[i], err
	}
	answered = true
	for _, w := range batch[1:] {
		w.ready <- struct{}{}
	}
	l.next()
}

// shared returns the context of a call made for batch: it carries the
// leader's values and ends when every waiter's context has ended, so that
// no caller's cancellation fails another's request. Its deadline is the
// latest of theirs, when each has one.
func shared[Q, A any](batch []*waiter[Q, A]) (context.Context, context.CancelFunc) {
	first := batch[0].ctx
	if len(batch) == 1 {
		return first, func() {}
	}
	var latest time.Time
	bounded := true
	for _, w := range batch {
		if w.ctx.Done() == nil { // never ends: neither does the call
			return context.WithoutCancel(first), func() {}
		}
		d, ok := w.ctx.Deadline()
		bounded = bounded && ok
		if d.After(latest) {
			latest = d
		}
	}
	base := context.WithoutCancel(first)
	cancelDeadline := context.CancelFunc(func() {})
	if bounded {
		base, cancelDeadline = context.WithDeadline(base, latest)
	}
	ctx, cancel := context.WithCancelCause(base)
	var left atomic.Int64
	left.Store(int64(len(batch)))
	stops := make([]func() bool, len(batch))
	for i, w := range batch {
		wctx := w.ctx
		stops[i] = context.AfterFunc(wctx, func() {
			if left.Add(-1) == 0 {
				cancel(context.Cause(wctx))
			}
		})
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel(nil)
		cancelDeadline()
	}
}
