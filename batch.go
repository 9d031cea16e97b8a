package revguard

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/revguard/revguard/internal/text"
)

// Result is what HandleBatch did with one event: what Handle would return.
type Result struct {
	Outcome Outcome
	Err     error
}

// HandleBatch is Handle for many events at once, with one store round trip
// to claim the batch and one to commit it (per round: see below). It
// returns one Result per event, in order, with the same meaning as Handle's.
// Handlers run one after another in the calling goroutine.
//
// Within the batch, an event whose key and revision repeat an earlier one is
// a copy and shares that event's result. Under Latest ordering only a key's
// highest revision runs; its lower revisions are Stale once it is
// acknowledged, and share its error otherwise (unless it was refused as an
// invalid revision: then the next lower one is tried). Under Sequential
// ordering a key's events run in revision order, one round per revision, so
// a batch can fill its own gaps; after a failure the key's later events get
// ErrGap. Under WithShadow the events are handled one by one.
func (g *Guard[T]) HandleBatch(ctx context.Context, events []T, h Handler[T]) []Result {
	results := make([]Result, len(events))
	if g.cfg.shadow {
		for i, e := range events {
			results[i].Outcome, results[i].Err = g.handleShadow(ctx, e, h)
		}
		return results
	}
	var start time.Time
	if g.watch {
		start = time.Now()
	}
	b := batch[T]{g: g, events: events, results: results, start: start}
	if h == nil {
		for i := range events {
			b.finish(i, "", 0, State{}, 0, errNilHandler)
		}
		return results
	}
	b.group()
	for {
		round := b.round()
		if len(round) == 0 {
			return results
		}
		b.run(ctx, round, h)
	}
}

// batch holds one HandleBatch call's bookkeeping.
type batch[T any] struct {
	g       *Guard[T]
	events  []T
	results []Result
	start   time.Time
	keys    []*keyRun // in order of first appearance
}

// keyRun is one key's events, in the order they are to be tried.
type keyRun struct {
	key    string
	revs   []revRun
	next   int
	state  State
	cached bool // the current revision's drop came from the drop cache
}

// revRun is one revision of a key and every event that carries it.
type revRun struct {
	rev    Revision
	events []int
}

func (b *batch[T]) finish(i int, key string, rev Revision, st State, out Outcome, err error) {
	b.finishCached(i, key, rev, st, out, err, false)
}

func (b *batch[T]) finishCached(i int, key string, rev Revision, st State, out Outcome, err error, cached bool) {
	b.results[i] = Result{Outcome: out, Err: err}
	b.g.record(Decision{Key: key, Revision: rev, Applied: st, Outcome: out, Err: err, Cached: cached}, b.start)
}

func (b *batch[T]) group() {
	byKey := make(map[string]*keyRun)
	for i, e := range b.events {
		key, rev, err := b.g.read(e)
		if err != nil {
			b.finish(i, key, rev, State{}, 0, err)
			continue
		}
		k := byKey[key]
		if k == nil {
			k = &keyRun{key: key}
			byKey[key] = k
			b.keys = append(b.keys, k)
		}
		if j := slices.IndexFunc(k.revs, func(r revRun) bool { return r.rev == rev }); j >= 0 {
			k.revs[j].events = append(k.revs[j].events, i)
		} else {
			k.revs = append(k.revs, revRun{rev: rev, events: []int{i}})
		}
	}
	latest := b.g.cfg.ordering == Latest
	for _, k := range b.keys {
		slices.SortFunc(k.revs, func(x, y revRun) int {
			if latest {
				x, y = y, x
			}
			switch {
			case x.rev < y.rev:
				return -1
			case x.rev > y.rev:
				return 1
			}
			return 0
		})
	}
}

// round returns the keys with a revision left to try.
func (b *batch[T]) round() []*keyRun {
	var r []*keyRun
	for _, k := range b.keys {
		if k.next < len(k.revs) {
			r = append(r, k)
		}
	}
	return r
}

// settle records the current revision's result for k and decides what is
// left to try.
func (b *batch[T]) settle(k *keyRun, out Outcome, err error) {
	if err != nil {
		out = 0
	}
	cur := k.revs[k.next]
	for _, i := range cur.events {
		b.finishCached(i, k.key, cur.rev, k.state, out, err, k.cached)
	}
	k.cached = false
	k.next++
	rest := k.revs[k.next:]
	switch {
	case b.g.cfg.ordering == Sequential:
		if err == nil {
			return
		}
		err = fmt.Errorf("%w: %s revision %d earlier in the batch was not applied: %v", ErrGap, text.Quote(k.key), cur.rev, err)
		for _, r := range rest {
			for _, i := range r.events {
				b.finish(i, k.key, r.rev, k.state, 0, err)
			}
		}
	case err == nil:
		for _, r := range rest {
			for _, i := range r.events {
				b.finish(i, k.key, r.rev, k.state, Stale, nil)
			}
		}
	case errors.Is(err, ErrInvalidRevision):
		return
	default:
		for _, r := range rest {
			for _, i := range r.events {
				b.finish(i, k.key, r.rev, k.state, 0, err)
			}
		}
	}
	k.next = len(k.revs)
}

// run tries the current revision of every key in round.
func (b *batch[T]) run(ctx context.Context, round []*keyRun, h Handler[T]) {
	g := b.g
	if g.cfg.mode == Transactional {
		for _, k := range round {
			r := k.revs[k.next]
			var out Outcome
			var err error
			out, k.state, k.cached, err = g.handle(ctx, k.key, r.rev, b.events[r.events[0]], h)
			b.settle(k, out, err)
		}
		return
	}
	if g.cache != nil {
		round = slices.DeleteFunc(round, func(k *keyRun) bool {
			out, st, ok := g.cached(k.key, k.revs[k.next].rev)
			if ok {
				k.state, k.cached = st, true
				b.settle(k, out, nil)
			}
			return ok
		})
		if len(round) == 0 {
			return
		}
	}
	epoch := g.cache.now()
	reqs := make([]Request, len(round))
	for i, k := range round {
		reqs[i] = g.request(k.key, k.revs[k.next].rev)
	}
	res, err := g.store.ClaimBatch(ctx, reqs)
	if err == nil && len(res) != len(reqs) {
		err = fmt.Errorf("revguard: store %T answered %d results for %d requests", g.store, len(res), len(reqs))
	}
	if err != nil {
		err = fmt.Errorf("revguard: claim batch of %d: %w", len(reqs), err)
		for _, k := range round {
			b.settle(k, 0, err)
		}
		return
	}
	var granted []int
	for i, k := range round {
		k.state = res[i].State
		g.learnReply(&reqs[i], res[i], epoch)
		if res[i].Verdict == Granted {
			granted = append(granted, i)
			continue
		}
		out, err := g.outcome(&reqs[i], res[i])
		b.settle(k, out, err)
	}
	if len(granted) == 0 {
		return
	}
	if g.cfg.mode == AtMostOnce {
		for _, i := range granted {
			k := round[i]
			dead, err := g.call(ctx, h, b.events[k.revs[k.next].events[0]])
			b.settle(k, appliedOr(dead), err)
		}
		return
	}
	b.runClaimed(ctx, round, reqs, granted, h, epoch)
}

// runClaimed runs the handlers of the granted claims under one lease, then
// commits the ones that succeeded in one call and releases the others.
func (b *batch[T]) runClaimed(ctx context.Context, round []*keyRun, reqs []Request, granted []int, h Handler[T], epoch uint64) {
	g := b.g
	claims := make([]Commit, len(granted))
	for j, i := range granted {
		claims[j] = Commit{reqs[i].Namespace, reqs[i].Key, reqs[i].Token}
	}
	l := g.keeper.start(ctx, claims...)
	hctx, running := l.ctx, true
	errs := make([]error, len(granted))
	dead := make([]bool, len(granted))
	var ok []Commit
	var okIdx []int
	defer func() {
		if running { // a handler panicked: free every claim, let the panic go on
			g.keeper.stop(l)
			for _, c := range claims {
				_ = g.store.Release(context.WithoutCancel(ctx), c.Namespace, c.Key, c.Token)
			}
		}
	}()
	for j, i := range granted {
		k := round[i]
		if dead[j], errs[j] = g.call(hctx, h, b.events[k.revs[k.next].events[0]]); errs[j] == nil {
			ok = append(ok, claims[j])
			okIdx = append(okIdx, j)
		}
	}
	running = false
	if ctx.Err() != nil {
		ctx = context.WithoutCancel(ctx)
	}
	if len(ok) > 0 {
		// The keeper goes on renewing while the commit is retried; a claim
		// lost meanwhile is refused by the store, which fences by token.
		var cerrs []error
		err := g.settle(ctx, l, func() (err error) {
			cerrs, err = g.store.CommitBatch(ctx, ok)
			return err
		})
		if err == nil && len(cerrs) != len(ok) {
			err = fmt.Errorf("revguard: store %T answered %d results for %d commits", g.store, len(cerrs), len(ok))
		}
		for n, j := range okIdx {
			switch {
			case err != nil:
				errs[j] = fmt.Errorf("revguard: commit batch of %d: %w", len(ok), err)
			case cerrs[n] != nil:
				errs[j] = storeError("commit", claims[j].Key, reqs[granted[j]].Rev, cerrs[n])
			}
		}
	}
	_ = g.keeper.stop(l)
	for j, err := range errs {
		if err != nil {
			_ = g.store.Release(ctx, claims[j].Namespace, claims[j].Key, claims[j].Token)
		}
	}
	for j, i := range granted {
		if errs[j] != nil {
			b.settle(round[i], 0, errs[j])
		} else {
			g.learn(round[i].key, round[i].state, reqs[i].Rev, true, epoch)
			b.settle(round[i], appliedOr(dead[j]), nil)
		}
	}
}

func appliedOr(deadLettered bool) Outcome {
	if deadLettered {
		return DeadLettered
	}
	return Applied
}
