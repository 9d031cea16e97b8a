package backendtest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/revguard/revguard"
)

const batchSize = 100

// batchKey spreads a batch over many Redis Cluster slots, and puts some
// keys in one slot through a hash tag.
func batchKey(i int) string {
	if i%4 == 0 {
		return fmt.Sprintf("{tagged}%d", i)
	}
	return fmt.Sprintf("key-%d", i)
}

// batchCase prepares entity i of a batch in namespace ns and returns the
// request the batch makes for it and the verdict that request deserves.
func batchCase(h *harness, ns string, i int, tok revguard.Token) (revguard.Request, revguard.Verdict) {
	h.t.Helper()
	k := batchKey(i)
	ctx := h.ctx()
	r := revguard.Request{Namespace: ns, Key: k, Token: tok, Lease: longLease, Advance: i%3 == 0}
	if i%7 != 0 {
		if err := h.s.Set(ctx, ns, k, 10); err != nil {
			h.t.Fatalf("Set: %v", err)
		}
	}
	var want revguard.Verdict
	switch i % 7 {
	case 0:
		r.Rev, want = revguard.Revision(i), granted
	case 1:
		r.Rev, want = 20, granted
	case 2:
		holder := revguard.Request{Namespace: ns, Key: k, Rev: 20, Token: newToken(), Lease: longLease}
		if res, err := h.s.Claim(ctx, holder); err != nil || res.Verdict != granted {
			h.t.Fatalf("Claim(%s) = %v, %v; want granted", describe(holder), res.Verdict, err)
		}
		r.Rev, want = 20, busy
	case 3:
		r.Rev, want = 10, dup
	case 4:
		r.Rev, want = 5, old
	case 5:
		r.Rev, r.Sequential, r.First, want = 12, true, 1, gap
	case 6:
		r.Rev, r.MaxStep, want = 12, 1, tooFar
	}
	return r, want
}

func testBatchLikeSingles(t *testing.T, newStore func(*testing.T) revguard.Store) {
	h := start(t, newStore)
	nsBatch, nsSingle := h.ns+"/batch", h.ns+"/single"
	var batch, singles []revguard.Request
	var wants []revguard.Verdict
	for i := range batchSize {
		tok := newToken()
		r, want := batchCase(h, nsBatch, i, tok)
		batch = append(batch, r)
		wants = append(wants, want)
		r, _ = batchCase(h, nsSingle, i, tok)
		singles = append(singles, r)
	}

	got, err := h.s.ClaimBatch(h.ctx(), batch)
	if err != nil {
		t.Fatalf("ClaimBatch: %v", err)
	}
	if len(got) != len(batch) {
		t.Fatalf("ClaimBatch: %d results for %d requests", len(got), len(batch))
	}
	for i, r := range singles {
		one, err := h.s.Claim(h.ctx(), r)
		if err != nil {
			t.Fatalf("Claim(%s): %v", describe(r), err)
		}
		if got[i].Verdict != one.Verdict || !sameState(got[i].State, one.State) {
			t.Errorf("request %d (%s): ClaimBatch answered %s, saw %s; Claim answered %s, saw %s",
				i, describe(batch[i]), got[i].Verdict, stateString(got[i].State), one.Verdict, stateString(one.State))
		}
		if one.Verdict != wants[i] {
			t.Errorf("request %d (%s): Claim answered %s; want %s", i, describe(r), one.Verdict, wants[i])
		}
	}
	for _, r := range batch {
		s1, err1 := h.s.Peek(h.ctx(), nsBatch, r.Key)
		s2, err2 := h.s.Peek(h.ctx(), nsSingle, r.Key)
		if err1 != nil || err2 != nil || !sameState(s1, s2) {
			t.Errorf("%s after ClaimBatch: %s, %v; after Claim: %s, %v", short(r.Key), stateString(s1), err1, stateString(s2), err2)
		}
	}

	if res, err := h.s.ClaimBatch(h.ctx(), nil); err != nil || len(res) != 0 {
		t.Errorf("ClaimBatch of nothing = %v, %v; want no results and no error", res, err)
	}
}

func testBatchCommit(t *testing.T, newStore func(*testing.T) revguard.Store) {
	h := start(t, newStore)
	var reqs []revguard.Request
	var commits []revguard.Commit
	lost := map[int]bool{}
	for i := range batchSize {
		tok := newToken()
		r := h.req(batchKey(i), revguard.Revision(i+1), tok)
		reqs = append(reqs, r)
		if i%10 == 3 {
			tok = newToken()
			lost[i] = true
		}
		commits = append(commits, revguard.Commit{Namespace: h.ns, Key: r.Key, Token: tok})
	}
	res, err := h.s.ClaimBatch(h.ctx(), reqs)
	if err != nil || len(res) != len(reqs) {
		t.Fatalf("ClaimBatch = %d results, %v; want %d", len(res), err, len(reqs))
	}
	for i, r := range res {
		if r.Verdict != granted || r.State.Exists {
			t.Fatalf("request %d (%s) answered %s, saw %s; want granted on an empty entity", i, describe(reqs[i]), r.Verdict, stateString(r.State))
		}
	}

	errs, err := h.s.CommitBatch(h.ctx(), commits)
	if err != nil || len(errs) != len(commits) {
		t.Fatalf("CommitBatch = %d results, %v; want %d", len(errs), err, len(commits))
	}
	for i, err := range errs {
		switch {
		case lost[i] && !errors.Is(err, revguard.ErrLeaseLost):
			t.Errorf("commit %d by a wrong token: %v; want ErrLeaseLost", i, err)
		case !lost[i] && err != nil:
			t.Errorf("commit %d: %v; want nil", i, err)
		}
	}
	for i, r := range reqs {
		if lost[i] {
			h.peek(r.Key, none)
			h.claim(h.req(r.Key, r.Rev, newToken()), busy, none)
			h.commit(r.Key, r.Token)
		}
		h.peek(r.Key, at(r.Rev))
	}

	if errs, err := h.s.CommitBatch(h.ctx(), nil); err != nil || len(errs) != 0 {
		t.Errorf("CommitBatch of nothing = %v, %v; want no results and no error", errs, err)
	}
}

func testBatchAdvance(t *testing.T, newStore func(*testing.T) revguard.Store) {
	h := start(t, newStore)
	var reqs []revguard.Request
	var wants []revguard.Verdict
	for i := range batchSize {
		k := batchKey(i)
		r := h.advance(k, 50, newToken())
		want := granted
		switch i % 5 {
		case 1:
			h.set(k, 50)
			want = dup
		case 2:
			h.set(k, 60)
			want = old
		case 3:
			h.claim(h.req(k, 50, newToken()), granted, none)
			want = busy
		case 4:
			h.set(k, 49)
			r.Sequential, r.First = true, 1
		}
		reqs = append(reqs, r)
		wants = append(wants, want)
	}
	res, err := h.s.ClaimBatch(h.ctx(), reqs)
	if err != nil || len(res) != len(reqs) {
		t.Fatalf("ClaimBatch = %d results, %v; want %d", len(res), err, len(reqs))
	}
	for i, r := range res {
		if r.Verdict != wants[i] {
			t.Errorf("request %d (%s) answered %s; want %s", i, describe(reqs[i]), r.Verdict, wants[i])
		}
	}
	for i, r := range reqs {
		switch i % 5 {
		case 2:
			h.peek(r.Key, at(60))
		case 3:
			h.peek(r.Key, none)
		default:
			h.peek(r.Key, at(50))
		}
	}
}

// testBatchThroughGuard runs HandleBatch, whose claims and commits go
// through ClaimBatch and CommitBatch, in both modes and orderings.
func testBatchThroughGuard(t *testing.T, newStore func(*testing.T) revguard.Store) {
	h := start(t, newStore)
	applied, stale, dup := batchWant{out: revguard.Applied}, batchWant{out: revguard.Stale}, batchWant{out: revguard.Duplicate}
	for _, mode := range []revguard.Mode{revguard.Claim, revguard.AtMostOnce} {
		p := mode.String() + "/"
		hs := newHistory()
		g := newGuard(h.s, h.ns, revguard.WithMode(mode))
		h.set(p+"a", 5)
		events := []event{{p + "a", 3}, {p + "a", 7}, {p + "a", 6}, {p + "b", 1}, {p + "b", 1}, {p + "c", 0}}
		checkBatch(t, mode.String()+", Latest", g.HandleBatch(h.ctx(), events, hs.handler(false)), events,
			[]batchWant{stale, applied, stale, applied, dup, applied}) // a later copy is its duplicate, as Handle would say
		if got := fmt.Sprint(hs.done); got != fmt.Sprintf("map[%sa:[7] %sb:[1] %sc:[0]]", p, p, p) {
			t.Errorf("%s, Latest: handlers ran %s; want each key's highest revision once", mode, got)
		}
		h.peek(p+"a", at(7))
		h.peek(p+"b", at(1))
		h.peek(p+"c", at(0))

		hs = newHistory()
		gs := newGuard(h.s, h.ns, revguard.WithMode(mode), revguard.WithOrdering(revguard.Sequential))
		h.set(p+"s", 2)
		events = []event{{p + "s", 5}, {p + "s", 3}, {p + "s", 4}, {p + "t", 2}, {p + "t", 1}, {p + "u", 3}}
		checkBatch(t, mode.String()+", Sequential", gs.HandleBatch(h.ctx(), events, hs.handler(false)), events,
			[]batchWant{applied, applied, applied, applied, applied, {err: revguard.ErrGap}})
		if got := fmt.Sprint(hs.done); got != fmt.Sprintf("map[%ss:[3 4 5] %st:[1 2]]", p, p) {
			t.Errorf("%s, Sequential: handlers ran %s; want each key's revisions once, in order", mode, got)
		}
		h.peek(p+"s", at(5))
		h.peek(p+"t", at(2))
		h.peek(p+"u", none)
	}

	// In Claim mode a failed handler leaves its event unrecorded and the
	// others of the batch applied.
	g := newGuard(h.s, h.ns)
	failOn := func(_ context.Context, e event) error {
		if e.key == "fails" {
			return errHandler
		}
		return nil
	}
	events := []event{{"fails", 1}, {"works", 1}}
	checkBatch(t, "Claim with a failing handler", g.HandleBatch(h.ctx(), events, failOn), events,
		[]batchWant{{err: errHandler}, applied})
	h.peek("fails", none)
	h.peek("works", at(1))
	checkBatch(t, "redelivery", g.HandleBatch(h.ctx(), events, func(context.Context, event) error { return nil }), events,
		[]batchWant{applied, {out: revguard.Duplicate}})
}

// batchWant is what HandleBatch should answer for one event: the outcome,
// or an error wrapping err when err is not nil.
type batchWant struct {
	out revguard.Outcome
	err error
}

func checkBatch(t *testing.T, what string, got []revguard.Result, events []event, wants []batchWant) {
	t.Helper()
	if len(got) != len(events) {
		t.Fatalf("%s: HandleBatch returned %d results for %d events", what, len(got), len(events))
	}
	for i, w := range wants {
		r := got[i]
		switch {
		case w.err != nil && !errors.Is(r.Err, w.err):
			t.Errorf("%s: event %d (%s, %d) = %v, %v; want an error wrapping %v", what, i, events[i].key, events[i].rev, r.Outcome, r.Err, w.err)
		case w.err == nil && (r.Err != nil || r.Outcome != w.out):
			t.Errorf("%s: event %d (%s, %d) = %v, %v; want %v", what, i, events[i].key, events[i].rev, r.Outcome, r.Err, w.out)
		}
	}
}
