package backendtest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/revguard/revguard"
)

// edges are the revisions where a backend's number type gives out: doubles
// above 2^53, signed integers at 2^63, arithmetic at the top.
var edges = []revguard.Revision{
	0, 1, 1<<53 - 1, 1 << 53, 1<<53 + 1, math.MaxInt64, 1 << 63, 1<<63 + 1, math.MaxUint64 - 1, math.MaxUint64,
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
// where applied+1 or rev-applied overflow a careless type, and where a
// double cannot tell applied+1 from applied+2. Each case runs alone and in
// a batch, claimed and advanced.
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
		{at(1 << 53), 1<<53 + 2, 0, 1, tooFar},
		{at(1 << 53), 1<<53 + 2, 0, 2, granted},
		{at(1 << 63), 1<<63 + 1, 0, 1, granted},
		{at(1 << 63), 1<<63 + 2, 0, 1, tooFar},
		{at(0), 1 << 63, 0, 1 << 63, granted},
		{at(0), 1<<63 + 1, 0, 1 << 63, tooFar},
		{at(0), top, 0, math.MaxUint64, granted},
		{at(1), top, 0, math.MaxUint64 - 1, granted},
		{at(top - 5), top, 0, math.MaxUint64, granted},
		{at(0), top, 0, math.MaxUint64 - 1, tooFar},
		{at(top), top, 0, 1, dup},
		{at(top), 0, 0, 1, old},
		{none, top, 0, 1, granted},
		// Sequential and a step bound together, at the top.
		{at(top - 2), top, 1, 1, gap},
		{at(top - 2), top - 2, 1, 1, dup},
		{at(top - 2), top - 3, 1, 1, old},
		{at(top - 2), top - 1, 1, 1, granted},
		{at(top - 1), top, 1, 1, granted},
	} {
		for _, batch := range []bool{false, true} {
			k := fmt.Sprintf("case-%d/batch-%v", i, batch)
			if c.applied.Exists {
				h.set(k, c.applied.Applied)
			}
			for _, advance := range []bool{false, true} {
				r := h.req(k, c.rev, newToken())
				r.Advance, r.MaxStep = advance, c.maxStep
				if c.first != 0 {
					r.Sequential, r.First = true, c.first
				}
				if batch {
					// A second entity makes it a real batch.
					other := h.advance(fmt.Sprintf("%s/other-%v", k, advance), 1, newToken())
					h.claimBatch([]revguard.Request{r, other}, []revguard.Verdict{c.want, granted}, []revguard.State{c.applied, none})
				} else {
					h.claim(r, c.want, c.applied)
				}
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
}

// testUint64Random decides random requests on entities set to random
// revisions, drawn near the places where decimal, binary and floating
// arithmetic go wrong, against the model; half are sent alone, half in one
// batch.
func testUint64Random(t *testing.T, newStore func(*testing.T) revguard.Store) {
	h := start(t, newStore)
	rng := rand.New(rand.NewPCG(differentialSeed, 64))
	near := []uint64{0, 1, 2, 9, 10, 1e10 - 1, 1e10, 1e10 + 1, 1<<32 - 1, 1 << 32, 1<<53 - 1, 1 << 53, 1<<53 + 1,
		1e15 - 1, 1e15, 1e19 - 1, 1e19, 1<<63 - 1, 1 << 63, math.MaxUint64 - 1, math.MaxUint64}
	draw := func() uint64 {
		e := near[rng.IntN(len(near))]
		switch rng.IntN(4) {
		case 0:
			return e + uint64(rng.IntN(3)) // wraps at the top, on purpose
		case 1:
			return e - uint64(rng.IntN(3))
		case 2:
			return rng.Uint64()
		}
		return e
	}
	const n = 240
	m := newModel()
	var (
		batch           []revguard.Request
		batchWant       []revguard.Verdict
		batchBefore     []revguard.State
		reqs            = make([]revguard.Request, n)
		befores, afters = make([]revguard.State, n), make([]revguard.State, n)
	)
	for i := range n {
		k := fmt.Sprint("random-", i)
		if rng.IntN(5) > 0 {
			rev := revguard.Revision(draw())
			h.set(k, rev)
			m.set(k, rev)
		}
		r := h.req(k, revguard.Revision(draw()), newToken())
		if st := m.peek(k); st.Exists && rng.IntN(2) == 0 {
			r.Rev = st.Applied + revguard.Revision(rng.IntN(3))
		}
		r.Advance = rng.IntN(2) == 0
		// Bounds are drawn at random, or next to the revision, where an
		// off-by-one shows.
		if rng.IntN(3) == 0 {
			r.Sequential, r.First = true, revguard.Revision(draw())
			if rng.IntN(2) == 0 {
				r.First = r.Rev + revguard.Revision(rng.IntN(3)) - 1
			}
		}
		if rng.IntN(3) == 0 {
			r.MaxStep = draw()
			if st := m.peek(k); st.Exists && rng.IntN(2) == 0 {
				r.MaxStep = uint64(r.Rev-st.Applied) + uint64(rng.IntN(3)) - 1
			}
			r.MaxStep = max(r.MaxStep, 1)
		}
		before, allowed := m.claim(r)
		if len(allowed) != 1 {
			t.Fatalf("the model allows %v for a fresh token", allowed)
		}
		reqs[i], befores[i], afters[i] = r, before, before
		if allowed[0] == granted && r.Advance {
			afters[i] = at(r.Rev)
		}
		if i%2 == 0 {
			h.claim(r, allowed[0], before)
		} else {
			batch, batchWant, batchBefore = append(batch, r), append(batchWant, allowed[0]), append(batchBefore, before)
		}
	}
	h.claimBatch(batch, batchWant, batchBefore)
	for i, r := range reqs {
		h.peek(r.Key, afters[i])
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
