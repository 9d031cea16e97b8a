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

// event is the smallest event a guard can read.
type event struct {
	key string
	rev revguard.Revision
}

func extract(e event) (string, revguard.Revision, error) { return e.key, e.rev, nil }

func newGuard(s revguard.Store, ns string, opts ...revguard.Option) *revguard.Guard[event] {
	return revguard.New(s, extract, append([]revguard.Option{revguard.WithNamespace(ns)}, opts...)...)
}

var errHandler = errors.New("backendtest: handler failed on purpose")

// counting returns a handler that counts its runs and returns err.
func counting(runs *atomic.Int64, err error) revguard.Handler[event] {
	return func(context.Context, event) error {
		runs.Add(1)
		return err
	}
}

// handle delivers e and requires outcome want, or an error wrapping wantErr
// when that is not nil.
func handle(t *testing.T, g *revguard.Guard[event], e event, h revguard.Handler[event], want revguard.Outcome, wantErr error) {
	t.Helper()
	out, err := g.Handle(t.Context(), e, h)
	switch {
	case wantErr != nil && !errors.Is(err, wantErr):
		t.Fatalf("Handle(%s, %d) = %v, %v; want an error wrapping %v", short(e.key), e.rev, out, err, wantErr)
	case wantErr == nil && (err != nil || out != want):
		t.Fatalf("Handle(%s, %d) = %v, %v; want %v", short(e.key), e.rev, out, err, want)
	}
}

func wantRuns(t *testing.T, what string, runs *atomic.Int64, want int64) {
	t.Helper()
	if n := runs.Load(); n != want {
		t.Fatalf("%s: handler ran %d times; want %d", what, n, want)
	}
}

func testGuardDecisions(t *testing.T, newStore func(*testing.T) revguard.Store) {
	h := start(t, newStore)
	for _, mode := range []revguard.Mode{revguard.Claim, revguard.AtMostOnce} {
		k := mode.String()
		g := newGuard(h.s, h.ns, revguard.WithMode(mode))
		var runs atomic.Int64
		ok := counting(&runs, nil)
		handle(t, g, event{k, 5}, ok, revguard.Applied, nil)
		handle(t, g, event{k, 5}, ok, revguard.Duplicate, nil)
		handle(t, g, event{k, 4}, ok, revguard.Stale, nil)
		handle(t, g, event{k, 9}, ok, revguard.Applied, nil)
		wantRuns(t, k, &runs, 2)
		h.peek(k, at(9))
		if rev, ok, err := g.Applied(h.ctx(), k); err != nil || !ok || rev != 9 {
			t.Fatalf("%s: Applied = %d, %v, %v; want 9, true", k, rev, ok, err)
		}
		for _, c := range []struct {
			rev  revguard.Revision
			want revguard.Outcome
		}{{10, revguard.Applied}, {9, revguard.Duplicate}, {8, revguard.Stale}} {
			if out, err := g.Check(h.ctx(), event{k, c.rev}); err != nil || out != c.want {
				t.Fatalf("%s: Check(%d) = %v, %v; want %v", k, c.rev, out, err, c.want)
			}
		}
		h.peek(k, at(9))

		if err := g.SetApplied(h.ctx(), k, 3); err != nil {
			t.Fatalf("%s: SetApplied: %v", k, err)
		}
		handle(t, g, event{k, 4}, ok, revguard.Applied, nil)
		if err := g.Forget(h.ctx(), k); err != nil {
			t.Fatalf("%s: Forget: %v", k, err)
		}
		handle(t, g, event{k, 0}, ok, revguard.Applied, nil)
		wantRuns(t, k, &runs, 4)

		ks := k + "/sequential"
		gs := newGuard(h.s, h.ns, revguard.WithMode(mode), revguard.WithOrdering(revguard.Sequential))
		handle(t, gs, event{ks, 2}, ok, 0, revguard.ErrGap)
		handle(t, gs, event{ks, 1}, ok, revguard.Applied, nil)
		handle(t, gs, event{ks, 3}, ok, 0, revguard.ErrGap)
		handle(t, gs, event{ks, 2}, ok, revguard.Applied, nil)
		handle(t, gs, event{ks, 1}, ok, revguard.Stale, nil)
		wantRuns(t, ks, &runs, 6)
		h.peek(ks, at(2))

		km := k + "/maxstep"
		gm := newGuard(h.s, h.ns, revguard.WithMode(mode), revguard.WithMaxStep(10))
		handle(t, gm, event{km, 100}, ok, revguard.Applied, nil)
		handle(t, gm, event{km, 111}, ok, 0, revguard.ErrInvalidRevision)
		h.peek(km, at(100))
		handle(t, gm, event{km, 110}, ok, revguard.Applied, nil)
		wantRuns(t, km, &runs, 8)

		handle(t, g, event{"", 1}, ok, 0, revguard.ErrInvalidKey)
		wantRuns(t, k+" with an empty key", &runs, 8)
	}

	// Two guards in different namespaces each apply the same event.
	var runs atomic.Int64
	g1 := newGuard(h.s, h.ns+"/one")
	g2 := newGuard(h.s, h.ns+"/two")
	for _, g := range []*revguard.Guard[event]{g1, g2, g1, g2} {
		_, _ = g.Handle(h.ctx(), event{"shared", 1}, counting(&runs, nil))
	}
	wantRuns(t, "two namespaces", &runs, 2)
}

func testHandlerError(t *testing.T, newStore func(*testing.T) revguard.Store) {
	h := start(t, newStore)
	var runs atomic.Int64
	fail, ok := counting(&runs, errHandler), counting(&runs, nil)

	g := newGuard(h.s, h.ns)
	const k = "claim"
	h.apply(k, 1, none)
	handle(t, g, event{k, 2}, fail, 0, errHandler)
	h.peek(k, at(1))
	handle(t, g, event{k, 2}, fail, 0, errHandler)
	handle(t, g, event{k, 2}, ok, revguard.Applied, nil)
	h.peek(k, at(2))
	wantRuns(t, "Claim", &runs, 3)

	gs := newGuard(h.s, h.ns, revguard.WithOrdering(revguard.Sequential))
	const ks = "claim/sequential"
	handle(t, gs, event{ks, 1}, fail, 0, errHandler)
	h.peek(ks, none)
	handle(t, gs, event{ks, 2}, ok, 0, revguard.ErrGap)
	handle(t, gs, event{ks, 1}, ok, revguard.Applied, nil)
	handle(t, gs, event{ks, 2}, ok, revguard.Applied, nil)
	wantRuns(t, "Claim, Sequential", &runs, 6)

	// AtMostOnce records before the handler runs: losing a failed event is
	// the documented price of its single round trip.
	ga := newGuard(h.s, h.ns, revguard.WithMode(revguard.AtMostOnce))
	const ka = "at-most-once"
	handle(t, ga, event{ka, 1}, fail, 0, errHandler)
	h.peek(ka, at(1))
	handle(t, ga, event{ka, 1}, ok, revguard.Duplicate, nil)
	wantRuns(t, "AtMostOnce", &runs, 7)
}

func testHandlerPanic(t *testing.T, newStore func(*testing.T) revguard.Store) {
	h := start(t, newStore)
	g := newGuard(h.s, h.ns)
	const k = "entity"
	h.apply(k, 1, none)
	panicky := func(context.Context, event) error { panic("handler panics on purpose") }
	func() {
		defer func() {
			if p := recover(); p != "handler panics on purpose" {
				t.Fatalf("Handle with a panicking handler: recovered %v; want the handler's panic", p)
			}
		}()
		_, _ = g.Handle(h.ctx(), event{k, 2}, panicky)
	}()
	h.peek(k, at(1))
	var runs atomic.Int64
	handle(t, g, event{k, 2}, counting(&runs, nil), revguard.Applied, nil)
	wantRuns(t, "redelivery after a panic", &runs, 1)
	h.peek(k, at(2))
}

// testLeaseLost takes the claim away while the handler runs, the way an
// operator's repair does: the handler's context must end and nothing of the
// old holder may be recorded.
func testLeaseLost(t *testing.T, newStore func(*testing.T) revguard.Store) {
	h := start(t, newStore)
	g := newGuard(h.s, h.ns, revguard.WithLease(150*time.Millisecond))
	for _, c := range []struct {
		name   string
		take   func(key string) error
		after  revguard.State
		honest bool // the handler returns its context's error rather than nil
	}{
		{"set", func(key string) error { return h.s.Set(h.ctx(), h.ns, key, 1) }, at(1), true},
		{"forget", func(key string) error { return h.s.Forget(h.ctx(), h.ns, key) }, none, true},
		{"set/handler-ignores-ctx", func(key string) error { return h.s.Set(h.ctx(), h.ns, key, 1) }, at(1), false},
	} {
		h.apply(c.name, 5, none)
		var cancelled bool
		var cause error
		out, err := g.Handle(h.ctx(), event{c.name, 10}, func(ctx context.Context, e event) error {
			if err := c.take(e.key); err != nil {
				return fmt.Errorf("taking the claim away: %w", err)
			}
			select {
			case <-ctx.Done():
				cancelled, cause = true, context.Cause(ctx)
			case <-time.After(5 * time.Second):
				return errors.New("context not cancelled 5s after the claim was taken away")
			}
			if c.honest {
				return ctx.Err()
			}
			return nil
		})
		if !cancelled || !errors.Is(err, revguard.ErrLeaseLost) {
			t.Fatalf("%s: Handle = %v, %v, handler context cancelled: %v; want ErrLeaseLost after cancelling", c.name, out, err, cancelled)
		}
		if !errors.Is(cause, revguard.ErrLeaseLost) {
			t.Fatalf("%s: the handler's context ended with cause %v; want ErrLeaseLost", c.name, cause)
		}
		h.peek(c.name, c.after)
	}
}

// testLongHandler runs a handler for several leases: the guard's renewals
// keep the claim, and a second delivery meanwhile is refused as in flight.
func testLongHandler(t *testing.T, newStore func(*testing.T) revguard.Store) {
	h := start(t, newStore)
	lease := 300 * time.Millisecond
	g := newGuard(h.s, h.ns, revguard.WithLease(lease))
	other := newGuard(h.s, h.ns, revguard.WithLease(lease))
	const k = "entity"
	var runs atomic.Int64
	var during [2]error
	handle(t, g, event{k, 1}, func(ctx context.Context, e event) error {
		for i := range during {
			time.Sleep(lease)
			_, during[i] = other.Handle(h.ctx(), event{k, 2}, counting(&runs, nil))
		}
		time.Sleep(lease / 2)
		return ctx.Err()
	}, revguard.Applied, nil)
	for i, err := range during {
		if !errors.Is(err, revguard.ErrInFlight) {
			t.Fatalf("delivery %d while the handler runs: %v; want ErrInFlight", i+1, err)
		}
	}
	wantRuns(t, "deliveries while another handler ran", &runs, 0)
	h.peek(k, at(1))
}
