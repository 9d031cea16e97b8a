package backendtest

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/revguard/revguard"
)

// txHarness starts a subtest on a store that Features says has transactions.
func txHarness(t *testing.T, newStore func(*testing.T) revguard.Store) *harness {
	h := start(t, newStore)
	if _, ok := h.s.(revguard.Transactor); !ok {
		t.Fatalf("Features.Transactions is set but %T does not implement revguard.Transactor", h.s)
	}
	return h
}

func testTxApplies(t *testing.T, newStore func(*testing.T) revguard.Store) {
	h := txHarness(t, newStore)
	g := newGuard(h.s, h.ns, revguard.WithMode(revguard.Transactional))
	const k = "entity"
	var runs atomic.Int64
	ok := counting(&runs, nil)
	handle(t, g, event{k, 5}, ok, revguard.Applied, nil)
	h.peek(k, at(5))
	handle(t, g, event{k, 5}, ok, revguard.Duplicate, nil)
	handle(t, g, event{k, 3}, ok, revguard.Stale, nil)
	handle(t, g, event{k, 6}, ok, revguard.Applied, nil)
	wantRuns(t, "Transactional", &runs, 2)
	h.peek(k, at(6))

	gs := newGuard(h.s, h.ns, revguard.WithMode(revguard.Transactional), revguard.WithOrdering(revguard.Sequential))
	const ks = "sequential"
	handle(t, gs, event{ks, 2}, ok, 0, revguard.ErrGap)
	handle(t, gs, event{ks, 1}, ok, revguard.Applied, nil)
	handle(t, gs, event{ks, 2}, ok, revguard.Applied, nil)
	wantRuns(t, "Transactional, Sequential", &runs, 4)
	h.peek(ks, at(2))

	// An advance made in a transaction is refused by a live claim, as any
	// advance is.
	holder := newToken()
	h.claim(h.req(k, 7, holder), granted, at(6))
	handle(t, g, event{k, 7}, ok, 0, revguard.ErrInFlight)
	h.commit(k, holder)
	handle(t, g, event{k, 7}, ok, revguard.Duplicate, nil)
	wantRuns(t, "Transactional beside a claim", &runs, 4)
}

func testTxHandlerError(t *testing.T, newStore func(*testing.T) revguard.Store) {
	h := txHarness(t, newStore)
	g := newGuard(h.s, h.ns, revguard.WithMode(revguard.Transactional))
	const k = "entity"
	h.apply(k, 1, none)
	var runs atomic.Int64
	handle(t, g, event{k, 2}, counting(&runs, errHandler), 0, errHandler)
	h.peek(k, at(1))
	handle(t, g, event{k, 2}, counting(&runs, errHandler), 0, errHandler)
	handle(t, g, event{k, 2}, counting(&runs, nil), revguard.Applied, nil)
	wantRuns(t, "Transactional after failures", &runs, 3)
	h.peek(k, at(2))

	func() {
		defer func() {
			if p := recover(); p != "handler panics on purpose" {
				t.Fatalf("Handle with a panicking handler: recovered %v; want the handler's panic", p)
			}
		}()
		_, _ = g.Handle(h.ctx(), event{k, 3}, func(context.Context, event) error { panic("handler panics on purpose") })
	}()
	h.peek(k, at(2))
	handle(t, g, event{k, 3}, counting(&runs, nil), revguard.Applied, nil)
	h.peek(k, at(3))
}

func testTxSameEvent(t *testing.T, newStore func(*testing.T) revguard.Store) {
	h := txHarness(t, newStore)
	for _, ord := range []revguard.Ordering{revguard.Latest, revguard.Sequential} {
		sameEvent(t, h, ord.String(), revguard.WithMode(revguard.Transactional), revguard.WithOrdering(ord))
	}
}
