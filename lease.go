package revguard

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/revguard/revguard/internal/text"
)

// A lease keeps claims alive while a handler runs: the guard's keeper renews
// it once a third of the lease has passed, and cancels the handler's context
// once the claims are lost, because the store said so or because renewals
// failed until the lease ran out.
//
// Most handlers finish long before their first renewal, so registering a
// lease must be cheap: no timer and no clock read per call. The keeper
// counts coarse ticks instead, in one goroutine that runs only while leases
// are registered and exits on the first tick that finds none.
type lease struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	claims []Commit
	one    [1]Commit
	shard  *keeperShard
	prev   *lease
	next   *lease
	since  uint64    // the keeper tick of the last renewal (or of the claim)
	good   time.Time // when the last renewal succeeded; zero before the first
	lost   atomic.Pointer[error]
	busy   bool // a renewal is under way
}

const keeperShards = 16

type keeper struct {
	store  Store
	length time.Duration
	tick   time.Duration
	now    atomic.Uint64 // ticks so far
	pick   atomic.Uint32
	shards [keeperShards]keeperShard

	running atomic.Bool // a loop goroutine runs
}

type keeperShard struct {
	mu   sync.Mutex
	head *lease
	n    int
	_    [32]byte
}

var leasePool = sync.Pool{New: func() any { return new(lease) }}

func newKeeper(s Store, length time.Duration) *keeper {
	// A claim is renewed between one and two ticks after it was made or
	// last renewed, so two ticks must stay below a third of the lease.
	return &keeper{store: s, length: length, tick: length / 6}
}

// start registers claims, held for the keeper's lease length from now.
func (k *keeper) start(parent context.Context, claims ...Commit) *lease {
	l := leasePool.Get().(*lease)
	l.ctx, l.cancel = context.WithCancelCause(parent)
	if len(claims) == 1 {
		l.one[0] = claims[0]
		l.claims = l.one[:]
	} else {
		l.claims = append([]Commit(nil), claims...)
	}
	l.since = k.now.Load()
	l.good = time.Time{}
	l.lost.Store(nil)
	sh := &k.shards[k.pick.Add(1)%keeperShards]
	l.shard = sh
	sh.mu.Lock()
	l.prev, l.next = nil, sh.head
	if sh.head != nil {
		sh.head.prev = l
	}
	sh.head = l
	sh.n++
	sh.mu.Unlock()

	// An atomic, not a lock: every claim passes here. The loop clears the
	// flag before its last look at the shards, so a lease registered after
	// that look finds it clear and starts a loop of its own.
	if !k.running.Load() && k.running.CompareAndSwap(false, true) {
		go k.loop()
	}
	return l
}

// stop unregisters l and reports whether its claims were lost meanwhile.
// A claim that ran out unnoticed is still caught by the store, which fences
// the commit by token.
func (k *keeper) stop(l *lease) error {
	if l == nil {
		return nil
	}
	sh := l.shard
	sh.mu.Lock()
	if l.prev != nil {
		l.prev.next = l.next
	} else {
		sh.head = l.next
	}
	if l.next != nil {
		l.next.prev = l.prev
	}
	sh.n--
	busy := l.busy
	sh.mu.Unlock()
	lost := l.lostErr()
	l.cancel(context.Canceled)
	if !busy {
		// A lease whose renewal is under way belongs to that renewal's
		// goroutine until it returns; it is left to the garbage collector.
		l.ctx, l.cancel, l.claims, l.one[0], l.shard, l.prev, l.next = nil, nil, nil, Commit{}, nil, nil, nil
		leasePool.Put(l)
	}
	return lost
}

func (l *lease) isLost() bool { return l != nil && l.lost.Load() != nil }

// lostErr returns why l's claims were lost, or nil. A nil lease (claims on
// an InProcess store) is never lost.
func (l *lease) lostErr() error {
	if l == nil {
		return nil
	}
	if p := l.lost.Load(); p != nil {
		return *p
	}
	return nil
}

func (k *keeper) loop() {
	t := time.NewTicker(k.tick)
	defer t.Stop()
	var due []*lease
	for range t.C {
		now := k.now.Add(1)
		due = due[:0]
		n := 0
		for i := range k.shards {
			sh := &k.shards[i]
			sh.mu.Lock()
			n += sh.n
			for l := sh.head; l != nil; l = l.next {
				if !l.busy && now-l.since >= 2 && l.lost.Load() == nil {
					l.busy = true
					due = append(due, l)
				}
			}
			sh.mu.Unlock()
		}
		if n == 0 {
			k.running.Store(false)
			if k.idle() || !k.running.CompareAndSwap(false, true) {
				return // idle, or a new lease started a loop of its own
			}
		}
		for _, l := range due {
			go k.renew(l, now)
		}
	}
}

func (k *keeper) idle() bool {
	for i := range k.shards {
		sh := &k.shards[i]
		sh.mu.Lock()
		n := sh.n
		sh.mu.Unlock()
		if n != 0 {
			return false
		}
	}
	return true
}

func (k *keeper) renew(l *lease, tick uint64) {
	started := time.Now()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(l.ctx), 2*k.tick)
	var err error
	for _, c := range l.claims {
		if err = k.store.Renew(ctx, c.Namespace, c.Key, c.Token, k.length); err != nil {
			err = fmt.Errorf("renewing %s: %w", text.Quote(c.Key), err)
			break
		}
	}
	cancel()
	sh := l.shard
	sh.mu.Lock()
	defer sh.mu.Unlock()
	l.busy = false
	if l.good.IsZero() {
		// The claim was made about two ticks before this renewal began.
		l.good = started.Add(-2 * k.tick)
	}
	switch {
	case err == nil:
		l.since, l.good = tick, started
	case errors.Is(err, ErrLeaseLost) || time.Since(l.good) > k.length-k.tick:
		lost := fmt.Errorf("%w: %w", ErrLeaseLost, err)
		l.lost.Store(&lost)
		l.cancel(lost)
	}
	// On any other error the store did not answer; the claim holds until
	// it runs out, and the next tick tries again.
}

// A heldCtx is the handler's context for claims on an InProcess store,
// which never run out and so need no renewal. The keeper is asked to watch
// them, which costs a context and a registration, only once the handler
// looks at Done (directly, or by deriving a context): only such a handler
// can learn that its claims were taken away (SetApplied, Forget), and the
// keeper's renewal is how the guard finds out. A handler that never looks
// has its commit fenced by the store all the same.
type heldCtx struct {
	context.Context // the caller's
	k               *keeper
	claims          []Commit
	one             [1]Commit

	mu     sync.Mutex
	l      *lease
	closed bool // the handlers returned: watching is over
}

func (k *keeper) held(parent context.Context, claims []Commit) *heldCtx {
	c := &heldCtx{Context: parent, k: k}
	if len(claims) == 1 {
		c.one[0] = claims[0]
		c.claims = c.one[:]
	} else {
		c.claims = slices.Clone(claims)
	}
	return c
}

func (c *heldCtx) watch() *lease {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.l == nil && !c.closed {
		c.l = c.k.start(c.Context, c.claims...)
	}
	return c.l
}

func (c *heldCtx) current() *lease {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.l
}

func (c *heldCtx) Done() <-chan struct{} {
	if l := c.watch(); l != nil {
		return l.ctx.Done()
	}
	return c.Context.Done()
}

func (c *heldCtx) Err() error {
	if l := c.current(); l != nil {
		return l.ctx.Err()
	}
	return c.Context.Err()
}

// Value answers for the lease's context once it exists, so that
// context.Cause finds why it was cancelled.
func (c *heldCtx) Value(key any) any {
	if l := c.current(); l != nil {
		return l.ctx.Value(key)
	}
	return c.Context.Value(key)
}

// close ends watching and returns the lease a watching handler started, or
// nil, for the caller to stop.
func (c *heldCtx) close() *lease {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.l
	c.l, c.closed = nil, true
	return l
}
