package revguard

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/revguard/revguard/internal/text"
)

// Result is what [Guard.HandleBatch] did with one event: what [Guard.Handle]
// would return.
type Result struct {
	Outcome Outcome // 0 when Err is not nil
	Err     error   // nil when the event may be acknowledged
}

// HandleBatch is [Guard.Handle] for many events at once, with one store round
// trip to claim the batch and one to commit it (per round: see below). It
// returns one [Result] per event, in order, with the same meaning as
// Handle's. Handlers run one after another in the calling goroutine, or up to
// [WithBatchConcurrency] at once, each of another entity.
//
// Within the batch, an event whose key and revision repeat an earlier one is
// a copy: it gets [Duplicate] once the first is recorded, and shares its error
// otherwise; its handler does not run again. Under [Latest] ordering only a
// key's highest revision runs; its lower revisions are [Stale] once it is
// acknowledged, and share its error otherwise (unless it was refused as an
// invalid revision: then the next lower one is tried). Under [Sequential]
// ordering a key's events run in revision order, one round per revision, so a
// batch can fill its own gaps; after a failure the key's later events get
// [ErrGap]. Under [WithShadow] the events are handled one by one.
func (g *Guard[T]) HandleBatch(ctx context.Context, events []T, h Handler[T]) []Result {
	results := make([]Result, len(events))
	if g.cfg.shadow {
		for i, e := range events {
			results[i].Outcome, results[i].Err = g.handleShadow(ctx, e, h)
		}
		return results
	}
	ctx, start, end := g.watchStart(ctx, true, len(events))
	if end != nil {
		defer end()
	}
	b := batch[T]{g: g, ctx: ctx, events: events, results: results, start: start}
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
	ctx     context.Context // for the hooks
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
	cached bool          // the current revision's drop came from the drop cache
	took   time.Duration // the current revision's handler time
}

// revRun is one revision of a key and every event that carries it.
type revRun struct {
	rev    Revision
	events []int
}

func (b *batch[T]) finish(i int, key string, rev Revision, st State, out Outcome, err error) {
	b.finishWith(i, Decision{Key: key, Revision: rev, Applied: st, Outcome: out, Err: err})
}

func (b *batch[T]) finishWith(i int, d Decision) {
	b.results[i] = Result{Outcome: d.Outcome, Err: d.Err}
	b.g.record(b.ctx, d, b.start)
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
// left to try. Its first event gets the result; a later copy of it gets
// what Handle would say of a redelivery: Duplicate once the revision is
// recorded, the same error otherwise (its handler is not run twice).
func (b *batch[T]) settle(k *keyRun, out Outcome, err error) {
	if err != nil {
		out = 0
	}
	cur := k.revs[k.next]
	again := out
	if out == Applied || out == DeadLettered {
		again = Duplicate
	}
	took := k.took
	for n, i := range cur.events {
		if n == 1 {
			out, took = again, 0 // a copy's handler did not run
		}
		b.finishWith(i, Decision{Key: k.key, Revision: cur.rev, Applied: k.state, Outcome: out, Err: err, Cached: k.cached, HandlerTime: took})
	}
	k.cached, k.took = false, 0
	k.next++
	rest := k.revs[k.next:]
	switch {
	case b.g.cfg.ordering == Sequential:
		if err == nil {
			return
		}
		//nolint:errorlint // %v: wrapping the earlier error would make these events, which never ran, look Permanent
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

// run tries the current revision of every key in round, through the
// guard's pipeline.
func (b *batch[T]) run(ctx context.Context, round []*keyRun, h Handler[T]) {
	g := b.g
	jobs := make([]job[T], len(round))
	for i, k := range round {
		r := k.revs[k.next]
		jobs[i].req, jobs[i].event = g.request(k.key, r.rev), b.events[r.events[0]]
	}
	g.decide(ctx, jobs, h)
	for i, k := range round {
		k.state, k.cached, k.took = jobs[i].state, jobs[i].cached, jobs[i].took
		b.settle(k, jobs[i].out, jobs[i].err)
	}
}
