package backendtest

import (
	"testing"

	"github.com/revguard/revguard"
)

const (
	granted = revguard.Granted
	dup     = revguard.Dup
	old     = revguard.Old
	busy    = revguard.Busy
	gap     = revguard.Gap
	tooFar  = revguard.TooFar
)

func testLatest(t *testing.T, newStore func(*testing.T) revguard.Store) {
	h := start(t, newStore)
	const k = "entity"
	h.peek(k, none)

	// Revision 0 applies to an empty entity, and once applied is a revision
	// like any other: a store that reads 0 as "nothing" fails here.
	h.apply(k, 0, none)
	h.claim(h.req(k, 0, newToken()), dup, at(0))
	h.apply(k, 1, at(0))
	h.claim(h.req(k, 0, newToken()), old, at(1))
	h.claim(h.req(k, 1, newToken()), dup, at(1))

	h.apply(k, 1000, at(1))
	h.claim(h.req(k, 999, newToken()), old, at(1000))
	h.claim(h.req(k, 1000, newToken()), dup, at(1000))
	h.apply(k, 1001, at(1000))

	// An entity that has never been seen starts anywhere.
	h.apply("joins-midway", 7_000_000, none)
}

func testSequential(t *testing.T, newStore func(*testing.T) revguard.Store) {
	h := start(t, newStore)
	seq := func(key string, rev, first revguard.Revision, want revguard.Verdict, before revguard.State) revguard.Token {
		t.Helper()
		tok := newToken()
		h.claim(h.sequential(key, rev, first, tok), want, before)
		return tok
	}

	const k = "from-1"
	seq(k, 0, 1, old, none)
	seq(k, 2, 1, gap, none)
	h.peek(k, none)
	h.commit(k, seq(k, 1, 1, granted, none))
	h.peek(k, at(1))
	h.commit(k, seq(k, 2, 1, granted, at(1)))
	seq(k, 4, 1, gap, at(2))
	seq(k, 2, 1, dup, at(2))
	seq(k, 1, 1, old, at(2))
	seq(k, 0, 1, old, at(2))
	h.commit(k, seq(k, 3, 1, granted, at(2)))
	h.peek(k, at(3))

	const k5 = "from-5"
	seq(k5, 4, 5, old, none)
	seq(k5, 6, 5, gap, none)
	h.commit(k5, seq(k5, 5, 5, granted, none))
	h.peek(k5, at(5))
	seq(k5, 7, 5, gap, at(5))
	// First only matters while the entity is empty.
	h.commit(k5, seq(k5, 6, 1, granted, at(5)))
	h.peek(k5, at(6))

	const k0 = "from-0"
	seq(k0, 1, 0, gap, none)
	h.commit(k0, seq(k0, 0, 0, granted, none))
	h.peek(k0, at(0))
	seq(k0, 0, 0, dup, at(0))
	h.commit(k0, seq(k0, 1, 0, granted, at(0)))
	h.peek(k0, at(1))

	// A gap claims nothing: the missing revision is granted at once.
	const kg = "gap-claims-nothing"
	seq(kg, 3, 1, gap, none)
	h.commit(kg, seq(kg, 1, 1, granted, none))
	seq(kg, 3, 1, gap, at(1))
	// Gap is decided before the claim: while another token holds 2, 4 is
	// a Gap, not Busy.
	held := seq(kg, 2, 1, granted, at(1))
	seq(kg, 4, 1, gap, at(1))
	h.commit(kg, held)
	h.commit(kg, seq(kg, 3, 1, granted, at(2)))
	h.peek(kg, at(3))

	const ka = "advance"
	adv := func(rev revguard.Revision, want revguard.Verdict, before revguard.State) {
		t.Helper()
		r := h.sequential(ka, rev, 1, newToken())
		r.Advance = true
		h.claim(r, want, before)
	}
	adv(2, gap, none)
	adv(1, granted, none)
	adv(3, gap, at(1))
	adv(2, granted, at(1))
	adv(2, dup, at(2))
	h.peek(ka, at(2))
}

func testMaxStep(t *testing.T, newStore func(*testing.T) revguard.Store) {
	h := start(t, newStore)
	step := func(key string, rev revguard.Revision, max uint64, advance bool, want revguard.Verdict, before revguard.State) revguard.Token {
		t.Helper()
		tok := newToken()
		r := h.req(key, rev, tok)
		r.MaxStep, r.Advance = max, advance
		h.claim(r, want, before)
		return tok
	}

	const k = "counter"
	// An empty entity is not bounded, so a consumer can join midway.
	h.commit(k, step(k, 1000, 1, false, granted, none))
	h.peek(k, at(1000))
	step(k, 1006, 5, false, tooFar, at(1000))
	step(k, 1006, 5, true, tooFar, at(1000))
	h.peek(k, at(1000))
	// TooFar claimed nothing: another token gets the bound itself at once.
	h.commit(k, step(k, 1005, 5, false, granted, at(1000)))
	h.peek(k, at(1005))
	step(k, 1005, 5, false, dup, at(1005))
	step(k, 1, 5, false, old, at(1005))
	step(k, 1011, 5, true, tooFar, at(1005))
	step(k, 1010, 5, true, granted, at(1005))
	h.peek(k, at(1010))
	step(k, 1011, 1, false, granted, at(1010))

	// The verdict against the applied revision comes before the claim:
	// while another token holds 1011, a revision too far above 1010 is
	// TooFar, not Busy, and changes nothing.
	step(k, 1020, 5, false, tooFar, at(1010))
	step(k, 1020, 5, true, tooFar, at(1010))
	step(k, 1012, 5, false, busy, at(1010))
}

func testAdvance(t *testing.T, newStore func(*testing.T) revguard.Store) {
	h := start(t, newStore)
	const k = "entity"
	h.claim(h.advance(k, 0, newToken()), granted, none)
	h.peek(k, at(0))
	h.claim(h.advance(k, 0, newToken()), dup, at(0))
	h.claim(h.advance(k, 5, newToken()), granted, at(0))
	h.peek(k, at(5))
	h.claim(h.advance(k, 4, newToken()), old, at(5))
	h.claim(h.advance(k, 5, newToken()), dup, at(5))
	h.peek(k, at(5))

	// An advance leaves no claim behind.
	h.apply(k, 6, at(5))

	// A live claim blocks an advance just as it blocks another claim.
	holder := newToken()
	h.claim(h.req(k, 7, holder), granted, at(6))
	h.claim(h.advance(k, 8, newToken()), busy, at(6))
	h.claim(h.advance(k, 6, newToken()), dup, at(6))
	h.peek(k, at(6))
	h.commit(k, holder)
	h.peek(k, at(7))
}
