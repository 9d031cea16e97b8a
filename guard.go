package revguard

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/revguard/revguard/internal/text"
)

// Handler processes one event. A nil error means the event's effects are done.
type Handler[T any] func(ctx context.Context, event T) error

// Extractor reads an event's entity key and revision. Its errors reach the
// caller wrapped in ErrInvalidEvent unless they already wrap ErrInvalidKey or
// ErrInvalidRevision.
type Extractor[T any] func(event T) (key string, rev Revision, err error)

// Guard lets an event reach its handler only if its revision is newer than
// the one already applied for its entity. It is safe for concurrent use, and
// any number of guards in any number of processes may share one store.
//
// The rule a consumer follows: err == nil means acknowledge the message (it
// was applied, or it is a duplicate or stale and dropping it is correct);
// any error means do not acknowledge it, so that it comes back.
type Guard[T any] struct {
	store   Store
	tx      Transactor
	extract Extractor[T]
	cfg     config
	watch   bool // an observer or logger wants timings

	deadLetter func(context.Context, T, error) error
	keeper     *keeper
	cache      *dropCache // nil unless WithDropCache

	tokenHi uint64
	tokenLo atomic.Uint64
	stats   counters
}

var errNilHandler = errors.New("revguard: nil handler")

// New returns a guard that keeps its applied revisions in store and reads
// events with extract. It does no I/O. It panics if store or extract is nil
// or if the store cannot provide the mode (Transactional needs a
// Transactor); those are programming errors.
func New[T any](store Store, extract Extractor[T], opts ...Option) *Guard[T] {
	if store == nil {
		panic("revguard: New: nil Store")
	}
	if extract == nil {
		panic("revguard: New: nil Extractor")
	}
	cfg := defaults()
	for _, o := range opts {
		if o == nil {
			panic("revguard: New: nil Option")
		}
		o(&cfg)
	}
	g := &Guard[T]{store: store, extract: extract, cfg: cfg, watch: cfg.observer != nil || cfg.logger != nil}
	g.keeper = newKeeper(store, cfg.lease)
	if cfg.mode == Transactional {
		tx, ok := store.(Transactor)
		if !ok {
			panic(fmt.Sprintf("revguard: New: mode Transactional needs a store with transactions, and %T has none (use sqlstore, or mode Claim)", store))
		}
		g.tx = tx
	}
	if cfg.deadLetter != nil {
		dl, ok := cfg.deadLetter.(func(context.Context, T, error) error)
		if !ok {
			panic(fmt.Sprintf("revguard: New: WithDeadLetter takes %T, not a callback for this guard's events", cfg.deadLetter))
		}
		g.deadLetter = dl
	}
	if cfg.cacheSize > 0 {
		if e, ok := store.(Expiring); ok && e.Expires() {
			panic(fmt.Sprintf("revguard: New: WithDropCache(%d) over %T, whose entities expire: an expired entity applies revisions the cache would drop", cfg.cacheSize, store))
		}
		g.cache = newDropCache(cfg.cacheSize)
	}
	var seed [8]byte
	if _, err := rand.Read(seed[:]); err != nil {
		panic("revguard: New: reading random token seed: " + err.Error())
	}
	g.tokenHi = binary.LittleEndian.Uint64(seed[:])
	return g
}

func (g *Guard[T]) newToken() Token {
	var t Token
	binary.LittleEndian.PutUint64(t[:8], g.tokenHi)
	binary.LittleEndian.PutUint64(t[8:], g.tokenLo.Add(1))
	return t
}

func (g *Guard[T]) request(key string, rev Revision) Request {
	return Request{
		Namespace:  g.cfg.namespace,
		Key:        key,
		Rev:        rev,
		Token:      g.newToken(),
		Lease:      g.cfg.lease,
		Advance:    g.cfg.mode != Claim,
		Sequential: g.cfg.ordering == Sequential,
		First:      g.cfg.first,
		MaxStep:    g.cfg.maxStep,
	}
}

// Handle runs h on event if the event's revision is newer than its entity's
// applied revision (under Sequential ordering: exactly the next one), and
// records it as applied as the mode says. It returns Applied, or Duplicate
// or Stale with h not run, and a nil error when the message may be
// acknowledged. An error from h is returned as it is.
func (g *Guard[T]) Handle(ctx context.Context, event T, h Handler[T]) (Outcome, error) {
	if g.cfg.shadow {
		return g.handleShadow(ctx, event, h)
	}
	var start time.Time
	if g.watch {
		start = time.Now()
	}
	var d Decision
	var err error
	d.Key, d.Revision, err = g.read(event)
	if err == nil {
		if h == nil {
			err = errNilHandler
		} else {
			d.Outcome, d.Applied, d.Cached, err = g.handle(ctx, d.Key, d.Revision, event, h)
		}
	}
	d.Err = err
	g.record(d, start)
	return d.Outcome, err
}

// cached answers a drop the drop cache knows of, without a store call.
func (g *Guard[T]) cached(key string, rev Revision) (Outcome, State, bool) {
	out, applied, ok := g.cache.drop(key, rev)
	if !ok {
		return 0, State{}, false
	}
	g.stats.cached.Add(1)
	return out, State{Applied: applied, Exists: true}, true
}

// learnReply tells the drop cache what a Claim that began at epoch answered:
// an advance granted is recorded at once, whatever its handler then does.
func (g *Guard[T]) learnReply(req *Request, res Reply, epoch uint64) {
	g.learn(req.Key, res.State, req.Rev, res.Verdict == Granted && req.Advance, epoch)
}

// learn tells the drop cache what a store call that began at epoch saw:
// st.Applied was applied then, and so was rev when the call applied it.
func (g *Guard[T]) learn(key string, st State, rev Revision, applied bool, epoch uint64) {
	switch {
	case g.cache == nil:
	case applied:
		g.cache.learn(key, max(rev, st.Applied), epoch)
	case st.Exists:
		g.cache.learn(key, st.Applied, epoch)
	}
}

// Wrap returns a handler that runs h through the guard and returns nil for
// dropped events, so that the caller acknowledges them. It panics if h is nil.
func (g *Guard[T]) Wrap(h Handler[T]) Handler[T] {
	if h == nil {
		panic("revguard: Wrap(nil)")
	}
	return func(ctx context.Context, event T) error {
		_, err := g.Handle(ctx, event, h)
		return err
	}
}

// Check tells what Handle would do with event now, without changing
// anything or running a handler: Applied means it would run. Claims are not
// considered, so an event Check calls Applied may still get ErrInFlight.
func (g *Guard[T]) Check(ctx context.Context, event T) (Outcome, error) {
	key, rev, err := g.read(event)
	if err != nil {
		return 0, err
	}
	st, err := g.store.Peek(ctx, g.cfg.namespace, key)
	if err != nil {
		return 0, storeError("peek", key, rev, err)
	}
	req := g.request(key, rev)
	return g.outcome(&req, Reply{Verdict: req.Decide(st), State: st})
}

// read extracts and validates an event's key and revision.
func (g *Guard[T]) read(event T) (string, Revision, error) {
	key, rev, err := g.extract(event)
	if err != nil {
		if !errors.Is(err, ErrInvalidKey) && !errors.Is(err, ErrInvalidRevision) {
			err = fmt.Errorf("%w: %w", ErrInvalidEvent, err)
		}
		return key, rev, err
	}
	if err := CheckKey(key); err != nil {
		return key, rev, err
	}
	if g.cfg.skew > 0 {
		now, _ := Timestamp(g.cfg.now())
		if limit := uint64(now) + uint64(g.cfg.skew); uint64(rev) > limit && limit > uint64(now) {
			return key, rev, fmt.Errorf("%w: revision %d of %s is %s ahead of the clock, beyond WithMaxFutureSkew(%s)",
				ErrInvalidRevision, rev, text.Quote(key), time.Duration(uint64(rev)-uint64(now)), g.cfg.skew)
		}
	}
	return key, rev, nil
}

func (g *Guard[T]) handle(ctx context.Context, key string, rev Revision, event T, h Handler[T]) (_ Outcome, _ State, cached bool, _ error) {
	if out, st, ok := g.cached(key, rev); ok {
		return out, st, true, nil
	}
	epoch := g.cache.now()
	req := g.request(key, rev)
	if g.cfg.mode == Transactional {
		dead := false
		res, err := g.tx.Transact(ctx, req, func(ctx context.Context) (err error) {
			dead, err = g.call(ctx, h, event)
			return err
		})
		if err != nil {
			return 0, res.State, false, err
		}
		out, err := g.outcome(&req, res)
		g.learn(key, res.State, rev, out == Applied, epoch)
		if dead && out == Applied {
			out = DeadLettered
		}
		return out, res.State, false, err
	}
	res, err := g.store.Claim(ctx, req)
	if err != nil {
		return 0, res.State, false, storeError("claim", key, rev, err)
	}
	g.learnReply(&req, res, epoch)
	if res.Verdict != Granted {
		out, err := g.outcome(&req, res)
		return out, res.State, false, err
	}
	var dead bool
	if g.cfg.mode == AtMostOnce {
		dead, err = g.call(ctx, h, event)
	} else {
		dead, err = g.runClaimed(ctx, &req, event, h)
		g.learn(key, res.State, rev, err == nil, epoch)
	}
	switch {
	case err != nil:
		return 0, res.State, false, err
	case dead:
		return DeadLettered, res.State, false, nil
	}
	return Applied, res.State, false, nil
}

// runClaimed runs h under the lease req holds and commits or releases it.
func (g *Guard[T]) runClaimed(ctx context.Context, req *Request, event T, h Handler[T]) (dead bool, err error) {
	l := g.keeper.start(ctx, Commit{req.Namespace, req.Key, req.Token})
	hctx, running := l.ctx, true
	defer func() {
		if running {
			g.keeper.stop(l)
			_ = g.store.Release(context.WithoutCancel(ctx), req.Namespace, req.Key, req.Token)
		}
	}()
	dead, err = g.call(hctx, h, event)
	running = false
	// A consumer shutting down still records what its handler finished.
	if ctx.Err() != nil {
		ctx = context.WithoutCancel(ctx)
	}
	if err != nil || l.isLost() {
		lost := g.keeper.stop(l)
		_ = g.store.Release(ctx, req.Namespace, req.Key, req.Token)
		if lost != nil {
			return false, lost
		}
		return false, err
	}
	// The keeper goes on renewing while the commit is retried.
	err = g.settle(ctx, l, func() error { return g.store.Commit(ctx, req.Namespace, req.Key, req.Token) })
	lost := g.keeper.stop(l)
	if err != nil {
		if lost != nil && !errors.Is(err, ErrLeaseLost) {
			err = fmt.Errorf("%w (%w)", lost, err)
		}
		return false, storeError("commit", req.Key, req.Rev, err)
	}
	return dead, nil
}

// settle runs commit, and again while the store cannot be reached and the
// lease still holds: the handlers' work is done, and giving up early would
// make the redelivery run them again. Every store call is safe to retry (a
// retried commit answers nil). The keeper must go on renewing l meanwhile.
func (g *Guard[T]) settle(ctx context.Context, l *lease, commit func() error) error {
	err := commit()
	if err == nil {
		return nil // the clock is read only on the way to a retry: a tenth of the memstore path
	}
	deadline := time.Now().Add(g.cfg.lease)
	wait := 10 * time.Millisecond
	for {
		if errors.Is(err, ErrLeaseLost) || l.isLost() || ctx.Err() != nil || time.Now().Add(wait).After(deadline) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
		wait = min(2*wait, time.Second)
		if err = commit(); err == nil {
			return nil
		}
	}
}

// outcome turns a store's verdict into what Handle returns.
func (g *Guard[T]) outcome(req *Request, res Reply) (Outcome, error) {
	switch res.Verdict {
	case Granted:
		return Applied, nil
	case Dup:
		return Duplicate, nil
	case Old:
		return Stale, nil
	case Busy:
		return 0, fmt.Errorf("%w: %s revision %d", ErrInFlight, text.Quote(req.Key), req.Rev)
	case Gap:
		want := req.First
		if res.State.Exists {
			want = res.State.Applied + 1
		}
		return 0, fmt.Errorf("%w: %s revision %d must wait for revision %d", ErrGap, text.Quote(req.Key), req.Rev, want)
	case TooFar:
		return 0, fmt.Errorf("%w: %s revision %d is %d above the applied %d, beyond WithMaxStep(%d)",
			ErrInvalidRevision, text.Quote(req.Key), req.Rev, req.Rev-res.State.Applied, res.State.Applied, req.MaxStep)
	}
	return 0, fmt.Errorf("revguard: store %T answered unknown verdict %d for %s", g.store, res.Verdict, text.Quote(req.Key))
}

func storeError(op, key string, rev Revision, err error) error {
	return fmt.Errorf("revguard: %s %s revision %d: %w", op, text.Quote(key), rev, err)
}

// Applied returns the entity's applied revision; ok is false when nothing
// has been applied to it.
func (g *Guard[T]) Applied(ctx context.Context, key string) (rev Revision, ok bool, err error) {
	if err := CheckKey(key); err != nil {
		return 0, false, err
	}
	st, err := g.store.Peek(ctx, g.cfg.namespace, key)
	return st.Applied, st.Exists, err
}

// SetApplied makes rev the entity's applied revision, lower or higher than
// before, and cancels any claim on it. It repairs an entity poisoned by a
// bogus revision, or starts one at a known point.
func (g *Guard[T]) SetApplied(ctx context.Context, key string, rev Revision) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	g.cache.invalidate()
	defer g.cache.invalidate()
	return g.store.Set(ctx, g.cfg.namespace, key, rev)
}

// Forget removes the entity, so that any revision applies to it again.
func (g *Guard[T]) Forget(ctx context.Context, key string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	g.cache.invalidate()
	defer g.cache.invalidate()
	return g.store.Forget(ctx, g.cfg.namespace, key)
}
