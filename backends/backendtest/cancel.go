package backendtest

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/revguard/revguard"
)

// testCancelledStore calls every method with a context cancelled before the
// call: each must answer the context's error and change nothing.
func testCancelledStore(t *testing.T, newStore func(*testing.T) revguard.Store) {
	h := start(t, newStore)
	const k, fresh = "entity", "fresh"
	h.apply(k, 5, none)
	holder := newToken()
	h.claim(h.req(k, 7, holder), granted, at(5))

	cancelled, cancel := context.WithCancel(h.ctx())
	cancel()
	expired, cancel := context.WithDeadline(h.ctx(), time.Now().Add(-time.Second))
	defer cancel()
	s, ns, other := h.s, h.ns, newToken()

	for _, c := range []struct {
		ctx  context.Context
		want error
	}{{cancelled, context.Canceled}, {expired, context.DeadlineExceeded}} {
		ctx := c.ctx
		calls := []struct {
			name string
			call func() error
		}{
			{"Claim of a higher revision", func() error {
				_, err := s.Claim(ctx, h.req(k, 9, other))
				return err
			}},
			{"Claim on an empty entity", func() error {
				_, err := s.Claim(ctx, h.req(fresh, 1, other))
				return err
			}},
			{"Claim to advance", func() error {
				_, err := s.Claim(ctx, h.advance(fresh, 1, other))
				return err
			}},
			{"ClaimBatch", func() error {
				_, err := s.ClaimBatch(ctx, []revguard.Request{h.req(fresh, 1, other), h.advance(fresh+"2", 1, other)})
				return err
			}},
			{"Renew", func() error { return s.Renew(ctx, ns, k, holder, longLease) }},
			{"Commit", func() error { return s.Commit(ctx, ns, k, holder) }},
			{"CommitBatch", func() error {
				_, err := s.CommitBatch(ctx, []revguard.Commit{{Namespace: ns, Key: k, Token: holder}})
				return err
			}},
			{"Release", func() error { return s.Release(ctx, ns, k, holder) }},
			{"Set", func() error { return s.Set(ctx, ns, k, 1) }},
			{"Set on an empty entity", func() error { return s.Set(ctx, ns, fresh, 1) }},
			{"Forget", func() error { return s.Forget(ctx, ns, k) }},
			{"Peek", func() error {
				_, err := s.Peek(ctx, ns, k)
				return err
			}},
		}
		for _, call := range calls {
			if err := call.call(); !errors.Is(err, c.want) {
				t.Errorf("%s with a context that is %v: %v; want an error wrapping it", call.name, c.want, err)
			}
		}
	}

	h.peek(k, at(5))
	h.peek(fresh, none)
	h.peek(fresh+"2", none)
	h.claim(h.req(k, 7, newToken()), busy, at(5))
	h.commit(k, holder)
	h.peek(k, at(7))
}

func testCancelledGuard(t *testing.T, newStore func(*testing.T) revguard.Store) {
	h := start(t, newStore)
	ctx, cancel := context.WithCancel(h.ctx())
	cancel()
	var runs atomic.Int64
	for _, mode := range []revguard.Mode{revguard.Claim, revguard.AtMostOnce} {
		k := fmt.Sprint(mode)
		h.apply(k, 1, none)
		g := newGuard(h.s, h.ns, revguard.WithMode(mode))
		out, err := g.Handle(ctx, event{k, 2}, counting(&runs, nil))
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s: Handle with a cancelled context = %v, %v; want context.Canceled", mode, out, err)
		}
		wantRuns(t, k, &runs, 0)
		h.peek(k, at(1))
		handle(t, g, event{k, 2}, counting(&runs, nil), revguard.Applied, nil)
		wantRuns(t, k, &runs, 1)
		runs.Store(0)
	}
}
