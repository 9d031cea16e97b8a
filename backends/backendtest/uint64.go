package backendtest

import (
	"fmt"
	"math"
	"testing"

	"github.com/revguard/revguard"
)

// edges are the revisions where a backend's number type gives out: doubles
// above 2^53, signed integers at 2^63, arithmetic at the top.
var edges = []revguard.Revision{
	0, 1, 1 << 53, 1<<53 + 1, math.MaxInt64, 1 << 63, 1<<63 + 1, math.MaxUint64 - 1, math.MaxUint64,
}

func verdictFor(applied, rev revguard.Revision) revguard.Verdict {
	switch {
	case rev > applied:
		return granted
	case rev == applied:
		return dup
	}
	return old
}

// testUint64Pairs decides every pair of edges both ways a revision gets
// applied: claim and commit, and advance.
func testUint64Pairs(t *testing.T, newStore func(*testing.T) revguard.Store) {
	for _, a := range edges {
		t.Run(a.String(), func(t *testing.T) {
			t.Parallel()
			uint64Pairs(start(t, newStore), a)
		})
	}
}

func uint64Pairs(h *harness, a revguard.Revision) {
	for _, b := range edges {
		want := verdictFor(a, b)
		after := at(max(a, b))

		k := fmt.Sprintf("claim/%d", b)
		h.apply(k, a, none)
		tok := newToken()
		h.claim(h.req(k, b, tok), want, at(a))
		if want == granted {
			h.commit(k, tok)
		}
		h.peek(k, after)

		k = fmt.Sprintf("advance/%d", b)
		h.claim(h.advance(k, a, newToken()), granted, none)
		h.claim(h.advance(k, b, newToken()), want, at(a))
		h.peek(k, after)
	}
}

// testUint64Bounds checks Sequential and MaxStep arithmetic at the edges,
// where applied+1 or rev-applied overflow a careless type.
func testUint64Bounds(t *testing.T, newStore func(*testing.T) revguard.Store) {
	h := start(t, newStore)
	const top = revguard.Revision(math.MaxUint64)
	for i, c := range []struct {
		applied revguard.State
		rev     revguard.Revision
		first   revguard.Revision // Sequential when not 0
		maxStep uint64
		want    revguard.Verdict
	}{
		{at(1 << 53), 1<<53 + 1, 1, 0, granted},
		{at(1 << 53), 1<<53 + 2, 1, 0, gap},
		{at(1<<53 + 1), 1 << 53, 1, 0, old},
		{at(math.MaxInt64), 1 << 63, 1, 0, granted},
		{at(math.MaxInt64), 1<<63 + 1, 1, 0, gap},
		{at(top - 1), top, 1, 0, granted},
		{at(top), top, 1, 0, dup},
		{at(top), top - 1, 1, 0, old},
		{at(top), 0, 1, 0, old},
		{at(top - 2), top, 1, 0, gap},
		{at(0), top, 1, 0, gap},
		{none, top, top, 0, granted},
		{none, top - 1, top, 0, old},
		{none, 1<<63 + 1, 1 << 63, 0, gap},
		{none, 1 << 63, 1 << 63, 0, granted},
		{at(1 << 63), 1<<63 + 1, 0, 1, granted},
		{at(1 << 63), 1<<63 + 2, 0, 1, tooFar},
		{at(0), 1 << 63, 0, 1 << 63, granted},
		{at(0), 1<<63 + 1, 0, 1 << 63, tooFar},
		{at(0), top, 0, math.MaxUint64, granted},
		{at(1), top, 0, math.MaxUint64 - 1, granted},
		{at(0), top, 0, math.MaxUint64 - 1, tooFar},
		{at(top), top, 0, 1, dup},
		{at(top), 0, 0, 1, old},
		{none, top, 0, 1, granted},
	} {
		k := fmt.Sprintf("case-%d", i)
		if c.applied.Exists {
			h.set(k, c.applied.Applied)
		}
		for _, advance := range []bool{false, true} {
			r := h.req(k, c.rev, newToken())
			r.Advance, r.MaxStep = advance, c.maxStep
			if c.first != 0 {
				r.Sequential, r.First = true, c.first
			}
			h.claim(r, c.want, c.applied)
			if c.want == granted && !advance {
				h.release(k, r.Token)
			}
		}
		if c.want == granted {
			h.peek(k, at(c.rev))
		} else {
			h.peek(k, c.applied)
		}
	}
}

func testUint64SetPeek(t *testing.T, newStore func(*testing.T) revguard.Store) {
	h := start(t, newStore)
	for _, r := range edges {
		k := fmt.Sprintf("set/%d", r)
		h.set(k, r)
		h.peek(k, at(r))
		h.claim(h.req(k, r, newToken()), dup, at(r))
	}
	// Set moves one entity across every edge, down as well as up.
	const k = "moving"
	for i := range edges {
		r := edges[len(edges)-1-i]
		h.set(k, r)
		h.peek(k, at(r))
	}
	for _, r := range edges {
		h.set(k, r)
		h.peek(k, at(r))
	}
}
