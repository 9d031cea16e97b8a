package backendtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/revguard/revguard"
)

// The tests here repeat a call that already took effect, as a client does
// when the reply is lost (go-redis retries after a read timeout): the retry
// must answer as the first call did.

func testRetryClaim(t *testing.T, newStore func(*testing.T) revguard.Store) {
	h := start(t, newStore)
	const k = "entity"
	a := newToken()
	h.claim(h.req(k, 5, a), granted, none)
	h.claim(h.req(k, 5, a), granted, none)
	h.claim(h.req(k, 5, newToken()), busy, none)
	h.commit(k, a)
	h.commit(k, a)
	h.peek(k, at(5))

	// A retried commit still answers nil once another claim is live, and
	// leaves that claim alone.
	b := newToken()
	h.claim(h.req(k, 6, b), granted, at(5))
	h.commit(k, a)
	h.claim(h.req(k, 6, newToken()), busy, at(5))
	h.peek(k, at(5))
	h.commit(k, b)
	h.commit(k, b)
	h.peek(k, at(6))

	// A retried claim renews: it outlives the lease of the first call.
	c := newToken()
	r := h.req(k, 7, c)
	r.Lease = shortLease
	h.claim(r, granted, at(6))
	time.Sleep(shortLease / 2)
	r.Lease = longLease
	h.claim(r, granted, at(6))
	time.Sleep(shortLease/2 + 100*time.Millisecond)
	h.claim(h.req(k, 7, newToken()), busy, at(6))
	h.commit(k, c)
	h.peek(k, at(7))

	// A retried sequential claim is not mistaken for a gap or a duplicate.
	d := newToken()
	h.claim(h.sequential(k, 8, 1, d), granted, at(7))
	h.claim(h.sequential(k, 8, 1, d), granted, at(7))
	h.commit(k, d)
	h.peek(k, at(8))
}

func testRetryAdvance(t *testing.T, newStore func(*testing.T) revguard.Store) {
	h := start(t, newStore)
	const k = "entity"
	a := newToken()
	h.claim(h.advance(k, 5, a), granted, none)
	// Reply.State is the entity before this call, which the first call
	// already changed.
	h.claim(h.advance(k, 5, a), granted, at(5))
	h.claim(h.advance(k, 5, newToken()), dup, at(5))
	h.peek(k, at(5))

	// Still answered as a retry while another token holds a claim.
	b := newToken()
	h.claim(h.req(k, 6, b), granted, at(5))
	h.claim(h.advance(k, 5, a), granted, at(5))
	h.claim(h.req(k, 6, newToken()), busy, at(5))
	h.commit(k, b)
	h.peek(k, at(6))

	// Under Sequential ordering and a step bound too.
	c := newToken()
	r := h.sequential(k, 7, 1, c)
	r.Advance, r.MaxStep = true, 1
	h.claim(r, granted, at(6))
	h.claim(r, granted, at(7))
	h.peek(k, at(7))

	// Once a newer revision is applied, a store whose client never sends a
	// call again may answer the retry stale; one whose client does (go-redis)
	// must still answer granted, and change nothing.
	h.apply(k, 8, at(7))
	h.claimAny(h.advance(k, 7, c), []revguard.Verdict{granted, old}, at(8))
	h.peek(k, at(8))
}

func testRetryReleaseRenew(t *testing.T, newStore func(*testing.T) revguard.Store) {
	h := start(t, newStore)
	const k = "entity"
	a := newToken()
	h.claim(h.req(k, 5, a), granted, none)
	h.renew(k, a, longLease)
	h.renew(k, a, longLease)
	h.claim(h.req(k, 5, newToken()), busy, none)
	h.release(k, a)
	h.release(k, a)
	h.peek(k, none)

	// A release retried after another token claimed leaves that claim.
	b := newToken()
	h.claim(h.req(k, 5, b), granted, none)
	h.release(k, a)
	h.claim(h.req(k, 5, newToken()), busy, none)
	h.commit(k, b)
	h.release(k, b)
	h.peek(k, at(5))
	h.apply(k, 6, at(5))
}

func testRetryBatch(t *testing.T, newStore func(*testing.T) revguard.Store) {
	h := start(t, newStore)
	keys := []string{"a", "b", "c", "d"}
	var reqs []revguard.Request
	var commits []revguard.Commit
	for i, k := range keys {
		tok := newToken()
		r := h.req(k, revguard.Revision(i+1), tok)
		if i%2 == 1 {
			r.Advance = true
		} else {
			commits = append(commits, revguard.Commit{Namespace: h.ns, Key: k, Token: tok})
		}
		reqs = append(reqs, r)
	}
	for round := range 2 {
		res, err := h.s.ClaimBatch(h.ctx(), reqs)
		if err != nil {
			t.Fatalf("ClaimBatch, round %d: %v", round, err)
		}
		if len(res) != len(reqs) {
			t.Fatalf("ClaimBatch, round %d: %d results for %d requests", round, len(res), len(reqs))
		}
		for i, r := range res {
			if r.Verdict != granted {
				t.Fatalf("ClaimBatch, round %d: request %d (%s) answered %s; want granted", round, i, describe(reqs[i]), r.Verdict)
			}
		}
	}
	for round := range 2 {
		errs, err := h.s.CommitBatch(h.ctx(), commits)
		if err != nil {
			t.Fatalf("CommitBatch, round %d: %v", round, err)
		}
		if len(errs) != len(commits) {
			t.Fatalf("CommitBatch, round %d: %d results for %d commits", round, len(errs), len(commits))
		}
		for i, err := range errs {
			if err != nil {
				t.Fatalf("CommitBatch, round %d: commit %d (%s): %v", round, i, short(commits[i].Key), err)
			}
		}
	}
	for i, k := range keys {
		h.peek(k, at(revguard.Revision(i+1)))
	}
}

// testRetryThroughGuard runs guards over a store whose every call takes
// effect twice, the second reply being the one the guard sees: no event may
// turn into a drop, in any mode.
func testRetryThroughGuard(t *testing.T, newStore func(*testing.T) revguard.Store) {
	h := start(t, newStore)
	s := replayStore{h.s}
	for _, mode := range []revguard.Mode{revguard.Claim, revguard.AtMostOnce} {
		for _, ord := range []revguard.Ordering{revguard.Latest, revguard.Sequential} {
			key := mode.String() + "/" + ord.String()
			g := newGuard(s, h.ns, revguard.WithMode(mode), revguard.WithOrdering(ord))
			for rev := revguard.Revision(1); rev <= 3; rev++ {
				runs := 0
				out, err := g.Handle(h.ctx(), event{key, rev}, func(context.Context, event) error { runs++; return nil })
				if err != nil || out != revguard.Applied || runs != 1 {
					t.Fatalf("%s revision %d over a replaying store: %v, %v, handler ran %d times; want applied once", key, rev, out, err, runs)
				}
				out, err = g.Handle(h.ctx(), event{key, rev}, func(context.Context, event) error { runs++; return nil })
				if err != nil || out != revguard.Duplicate || runs != 1 {
					t.Fatalf("%s revision %d redelivered: %v, %v, handler ran %d times; want duplicate", key, rev, out, err, runs)
				}
			}
			h.peek(key, at(3))
		}
	}

	// A failed handler's release, replayed, still lets the redelivery run.
	g := newGuard(s, h.ns)
	errBoom := errors.New("boom")
	if _, err := g.Handle(h.ctx(), event{"failed", 1}, func(context.Context, event) error { return errBoom }); !errors.Is(err, errBoom) {
		t.Fatalf("Handle with a failing handler = %v; want the handler's error", err)
	}
	h.peek("failed", none)
	if out, err := g.Handle(h.ctx(), event{"failed", 1}, func(context.Context, event) error { return nil }); err != nil || out != revguard.Applied {
		t.Fatalf("redelivery after a failed handler = %v, %v; want applied", out, err)
	}
}

// replayStore makes every call twice and returns the second answer, as a
// client retrying after a lost reply does.
type replayStore struct{ revguard.Store }

func (s replayStore) Claim(ctx context.Context, req revguard.Request) (revguard.Reply, error) {
	_, _ = s.Store.Claim(ctx, req)
	return s.Store.Claim(ctx, req)
}

func (s replayStore) ClaimBatch(ctx context.Context, reqs []revguard.Request) ([]revguard.Reply, error) {
	_, _ = s.Store.ClaimBatch(ctx, reqs)
	return s.Store.ClaimBatch(ctx, reqs)
}

func (s replayStore) Renew(ctx context.Context, ns, key string, token revguard.Token, lease time.Duration) error {
	_ = s.Store.Renew(ctx, ns, key, token, lease)
	return s.Store.Renew(ctx, ns, key, token, lease)
}

func (s replayStore) Commit(ctx context.Context, ns, key string, token revguard.Token) error {
	_ = s.Store.Commit(ctx, ns, key, token)
	return s.Store.Commit(ctx, ns, key, token)
}

func (s replayStore) CommitBatch(ctx context.Context, commits []revguard.Commit) ([]error, error) {
	_, _ = s.Store.CommitBatch(ctx, commits)
	return s.Store.CommitBatch(ctx, commits)
}

func (s replayStore) Release(ctx context.Context, ns, key string, token revguard.Token) error {
	_ = s.Store.Release(ctx, ns, key, token)
	return s.Store.Release(ctx, ns, key, token)
}
