package revguard

import (
	"context"
	"time"
)

// Hooks let instrumentation follow a guard's decisions as they happen, in
// the caller's context: contrib/revotel makes OpenTelemetry spans and
// metrics of them. Every field may be nil. They run on the goroutines of
// [Guard.Handle] and [Guard.HandleBatch] (Decided and [Store] also on those of
// [WithBatchConcurrency]), so they must be quick and safe for concurrent use.
type Hooks struct {
	// Begin is called as Handle or HandleBatch starts. The context it
	// returns is the one the rest of the call uses: store calls, handlers
	// and the other hooks get it, so that a span Begin starts is their
	// parent. end is called once, as the call returns (also when a handler
	// panics).
	Begin func(ctx context.Context, c Call) (_ context.Context, end func())

	// Store is called after each store call made for the call: op is
	// "claim" (a claim, or AtMostOnce's advance), "commit", "release",
	// "transact" (Transactional's transaction, handler included) or "peek"
	// (HandleReply reading a duplicate's reply); n is how
	// many of the call's requests it carried, and took how long the caller
	// waited for it, including the wait for a round trip shared with
	// concurrent calls (see WithoutCoalescing). Lease renewals, which run
	// in the background, are not reported.
	Store func(ctx context.Context, op string, n int, took time.Duration, err error)

	// Decided is called once per event with its Decision, as an observer
	// set with WithObserver is.
	Decided func(ctx context.Context, d Decision)
}

// Call describes a [Guard.Handle] or [Guard.HandleBatch] call to the Begin
// hook.
type Call struct {
	Namespace string // the guard's
	Mode      Mode   // the guard's
	Batch     bool   // HandleBatch
	Events    int    // how many events: 1 for Handle
}

// WithHooks sets the hooks instrumentation follows the guard with. A second
// WithHooks replaces the first. The default is none, and a guard without
// hooks, observer or logger reads no clock.
func WithHooks(h Hooks) Option {
	return func(c *config) { c.hooks = h }
}

// storeCall reports a store call to the Store hook. start is zero when no
// hook wanted the clock read.
func (g *Guard[T]) storeCall(ctx context.Context, op string, n int, start time.Time, err error) {
	if g.cfg.hooks.Store != nil {
		g.cfg.hooks.Store(ctx, op, n, time.Since(start), err)
	}
}

// storeStart reads the clock if the Store hook will want it.
func (g *Guard[T]) storeStart() time.Time {
	if g.cfg.hooks.Store != nil {
		return time.Now()
	}
	return time.Time{}
}

// watchStart reads the clock and calls the Begin hook for a call, when the
// guard watches; end is nil when there is nothing to end.
func (g *Guard[T]) watchStart(ctx context.Context, batch bool, events int) (context.Context, time.Time, func()) {
	if !g.watch {
		return ctx, time.Time{}, nil
	}
	start := time.Now()
	ctx, end := g.begin(ctx, batch, events)
	return ctx, start, end
}

// begin calls the Begin hook, if any; end is nil when there is none.
func (g *Guard[T]) begin(ctx context.Context, batch bool, events int) (context.Context, func()) {
	if g.cfg.hooks.Begin == nil {
		return ctx, nil
	}
	return g.cfg.hooks.Begin(ctx, Call{Namespace: g.cfg.namespace, Mode: g.cfg.mode, Batch: batch, Events: events})
}

func (h *Hooks) any() bool { return h.Begin != nil || h.Store != nil || h.Decided != nil }
