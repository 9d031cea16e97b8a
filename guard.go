package revguard

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/revguard/revguard/internal/text"
)

// Handler processes one event. A nil error means the event's effects are done.
type Handler[T any] func(ctx context.Context, event T) error

// Extractor reads an event's entity key and revision. Its errors reach the
// caller wrapped in [ErrInvalidEvent] unless they already wrap
// [ErrInvalidKey] or [ErrInvalidRevision].
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
	kept    Payloads // the store, if it keeps payloads; for HandleReply
	extract Extractor[T]
	cfg     config
	watch   bool // an observer or logger wants timings

	deadLetter func(context.Context, T, error) error
	keeper     *keeper
	held       bool       // the store is InProcess: claims need no lease
	cache      *dropCache // nil unless WithDropCache
	claims     *lane[Request, Reply]
	commits    *lane[Commit, error]

	tokenHi uint64
	tokenLo atomic.Uint64
	stats   counters
}

var errNilHandler = errors.New("revguard: nil handler")

// New returns a guard that keeps its applied revisions in store and reads
// events with extract. It does no I/O. It panics if store or extract is nil
// or if the store cannot provide the mode ([Transactional] needs a
// [Transactor]); those are programming errors.
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
	g := &Guard[T]{store: store, extract: extract, cfg: cfg, watch: cfg.observer != nil || cfg.logger != nil || cfg.hooks.any()}
	g.keeper = newKeeper(store, cfg.lease)
	if ip, ok := store.(InProcess); ok && ip.InProcess() {
		g.held, g.cfg.coalesce = true, false
	}
	g.claims = newLane(func(r *Request) string { return r.Key }, store.Claim, store.ClaimBatch, !g.cfg.coalesce)
	g.commits = newLane(func(c *Commit) string { return c.Key },
		func(ctx context.Context, c Commit) (error, error) {
			return nil, store.Commit(ctx, c.Namespace, c.Key, c.Token)
		},
		store.CommitBatch, !g.cfg.coalesce)
	if cfg.mode == Transactional {
		tx, ok := store.(Transactor)
		if !ok {
			panic(fmt.Sprintf("revguard: New: mode Transactional needs a store with transactions, and %T has none (use sqlstore, or mode Claim)", store))
		}
		g.tx = tx
	}
	if p, ok := store.(Payloads); ok && cfg.mode == Claim {
		g.kept = p
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

// A job is one decision under way: one entity's revision, and the event
// that carries it to the handler.
type job[T any] struct {
	req    Request
	event  T
	state  State // the entity as the store, or the drop cache, saw it
	out    Outcome
	err    error
	took   time.Duration // in the handler, when the guard watches
	cached bool          // the drop cache answered
	done   bool          // out or err is final
	reply  []byte        // HandleReply's payload, committed with the revision
}

// Handle runs h on event if the event's revision is newer than its entity's
// applied revision (under [Sequential] ordering: exactly the next one), and
// records it as applied as the mode says. It returns [Applied], or [Duplicate]
// or [Stale] with h not run, and a nil error when the message may be
// acknowledged. An error from h is returned as it is.
//
// Concurrent calls on one guard share store round trips (see
// [WithoutCoalescing]); each keeps the meaning of a call on its own.
func (g *Guard[T]) Handle(ctx context.Context, event T, h Handler[T]) (Outcome, error) {
	if g.cfg.shadow {
		return g.handleShadow(ctx, event, h)
	}
	ctx, start, end := g.watchStart(ctx, false, 1)
	if end != nil {
		defer end()
	}
	var one [1]job[T]
	j := &one[0]
	if g.prepare(j, event) {
		if h == nil {
			j.finish(0, errNilHandler)
		} else {
			g.decide(ctx, one[:], h)
		}
	}
	g.record(ctx, j.decision(), start)
	return j.out, j.err
}

// decide takes jobs, one per entity, through the pipeline and leaves each
// with its outcome or error. Handle is decide with one job; HandleBatch
// calls it once per round of its batch.
func (g *Guard[T]) decide(ctx context.Context, jobs []job[T], h Handler[T]) {
	if g.tx != nil {
		g.transact(ctx, jobs, h)
		return
	}
	if g.cache != nil && g.dropCached(jobs) == 0 {
		return
	}
	epoch := g.cache.now()
	if g.claim(ctx, jobs, epoch) == 0 {
		return
	}
	if g.cfg.mode == AtMostOnce {
		g.run(ctx, jobs, h)
		return
	}
	g.runClaimed(ctx, jobs, h, epoch)
}

// prepare reads event into j, or finishes j with the reason it cannot.
func (g *Guard[T]) prepare(j *job[T], event T) bool {
	key, rev, err := g.read(event)
	j.req.Key, j.req.Rev = key, rev
	if err != nil {
		j.finish(0, err)
		return false
	}
	j.req, j.event = g.request(key, rev), event
	return true
}

func (g *Guard[T]) request(key string, rev Revision) Request {
	lease := g.cfg.lease
	if g.held {
		lease = 0
	}
	return Request{
		Namespace:  g.cfg.namespace,
		Key:        key,
		Rev:        rev,
		Token:      g.newToken(),
		Lease:      lease,
		Advance:    g.cfg.mode != Claim,
		Sequential: g.cfg.ordering == Sequential,
		First:      g.cfg.first,
		MaxStep:    g.cfg.maxStep,
	}
}

func (j *job[T]) finish(out Outcome, err error) {
	if err != nil {
		out = 0
	}
	j.out, j.err, j.done = out, err, true
}

func (j *job[T]) decision() Decision {
	return Decision{Key: j.req.Key, Revision: j.req.Rev, Applied: j.state, Outcome: j.out, Cached: j.cached, Err: j.err, HandlerTime: j.took}
}

// dropCached answers the jobs the drop cache knows to be drops, and returns
// how many are left.
func (g *Guard[T]) dropCached(jobs []job[T]) (left int) {
	for i := range jobs {
		j := &jobs[i]
		if j.done {
			continue
		}
		out, applied, ok := g.cache.drop(j.req.Key, j.req.Rev)
		if !ok {
			left++
			continue
		}
		g.stats.cached.Add(1)
		j.state, j.cached = State{Applied: applied, Exists: true}, true
		j.finish(out, nil)
	}
	return left
}

// claim claims (or advances) every job left in one store call (Handle's
// shared with concurrent callers) and finishes the refused ones. It returns how many
// were granted.
func (g *Guard[T]) claim(ctx context.Context, jobs []job[T], epoch uint64) (granted int) {
	var one [1]Reply
	replies := one[:]
	var err error
	start := g.storeStart()
	if len(jobs) == 1 && !jobs[0].done {
		one[0], err = g.claims.call(ctx, jobs[0].req)
	} else {
		reqs := make([]Request, 0, len(jobs))
		for i := range jobs {
			if !jobs[i].done {
				reqs = append(reqs, jobs[i].req)
			}
		}
		replies = make([]Reply, len(reqs))
		err = g.claims.batch(ctx, reqs, replies)
	}
	g.storeCall(ctx, "claim", len(replies), start, err)
	n := 0
	for i := range jobs {
		j := &jobs[i]
		if j.done {
			continue
		}
		res := replies[n]
		n++
		if err != nil {
			j.finish(0, storeError("claim", j.req.Key, j.req.Rev, err))
			continue
		}
		j.state = res.State
		g.learnReply(&j.req, res, epoch)
		if res.Verdict == Granted {
			granted++
			continue
		}
		j.finish(g.outcome(&j.req, res))
	}
	return granted
}

// transact runs each job's handler in a transaction of the store's own,
// which records its revision.
func (g *Guard[T]) transact(ctx context.Context, jobs []job[T], h Handler[T]) {
	if g.cache != nil && g.dropCached(jobs) == 0 {
		return
	}
	for i := range jobs {
		j := &jobs[i]
		if j.done {
			continue
		}
		epoch := g.cache.now()
		// The closure escapes to the store: it must not capture j, or every
		// Handle's job would live on the heap.
		dead, took, event := false, time.Duration(0), j.event
		var herr error
		start := g.storeStart()
		res, err := g.tx.Transact(ctx, j.req, func(ctx context.Context) error {
			dead, took, herr = g.timedCall(ctx, h, event)
			return herr
		})
		if err != nil && (herr == nil || !errors.Is(err, herr)) {
			err = storeError("transact", j.req.Key, j.req.Rev, err) // not the handler's
		}
		g.storeCall(ctx, "transact", 1, start, err)
		j.took = took
		j.state = res.State
		if err != nil {
			j.finish(0, err)
			continue
		}
		out, err := g.outcome(&j.req, res)
		g.learn(j.req.Key, res.State, j.req.Rev, out == Applied, epoch)
		if dead && out == Applied {
			out = DeadLettered
		}
		j.finish(out, err)
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

// Check tells what [Guard.Handle] would do with event now, without changing
// anything or running a handler: [Applied] means it would run. Claims are not
// considered, so an event Check calls Applied may still get [ErrInFlight].
func (g *Guard[T]) Check(ctx context.Context, event T) (Outcome, error) {
	var one [1]job[T]
	j := &one[0]
	if !g.prepare(j, event) || g.cache != nil && g.dropCached(one[:]) == 0 {
		return j.out, j.err
	}
	st, err := g.store.Peek(ctx, g.cfg.namespace, j.req.Key)
	if err != nil {
		return 0, storeError("peek", j.req.Key, j.req.Rev, err)
	}
	return g.outcome(&j.req, Reply{Verdict: j.req.Decide(st), State: st})
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
			// Capped: 2^63 ns (292 years) ahead or more would print as a negative Duration.
			ahead := time.Duration(min(uint64(rev)-uint64(now), math.MaxInt64))
			return key, rev, fmt.Errorf("%w: revision %d of %s is %s ahead of the clock, beyond WithMaxFutureSkew(%s)",
				ErrInvalidRevision, rev, text.Quote(key), ahead, g.cfg.skew)
		}
	}
	return key, rev, nil
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
	return &StoreError{Op: op, Key: key, Rev: rev, Err: err}
}

// StoreError is the error of an event whose store call failed: the store
// could not be reached, or gave an answer it could not read (a lost lease
// at commit is one too, and wraps [ErrLeaseLost]). It tells a failing store
// apart from a failing handler, whose error [Guard.Handle] returns as it is.
type StoreError struct {
	Op  string   // "claim" (a claim or an advance), "commit", "peek" (Check, HandleReply) or "transact"
	Key string   // the event's entity key
	Rev Revision // the event's revision
	Err error    // what the store returned
}

// Error names the operation, key and revision before the store's error, so
// that a log line says which event the store failed.
func (e *StoreError) Error() string {
	return fmt.Sprintf("revguard: %s %s revision %d: %v", e.Op, text.Quote(e.Key), e.Rev, e.Err)
}

// Unwrap returns Err, so that [errors.Is] finds the driver's or the
// context's error through the StoreError.
func (e *StoreError) Unwrap() error { return e.Err }
