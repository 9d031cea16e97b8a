package backendtest

import (
	"testing"

	"github.com/revguard/revguard"
)

func testSet(t *testing.T, newStore func(*testing.T) revguard.Store) {
	h := start(t, newStore)
	const k = "entity"
	h.set(k, 7)
	h.peek(k, at(7))
	h.claim(h.req(k, 7, newToken()), dup, at(7))

	h.apply(k, 10, at(7))
	// Lower is the repair for a poisoned entity: what lies above is open again.
	h.set(k, 3)
	h.peek(k, at(3))
	h.apply(k, 4, at(3))
	h.set(k, 100)
	h.peek(k, at(100))
	h.claim(h.req(k, 50, newToken()), old, at(100))
	h.set(k, 100)
	h.peek(k, at(100))

	h.set(k, 0)
	h.peek(k, at(0))
	h.claim(h.req(k, 0, newToken()), dup, at(0))
	h.apply(k, 1, at(0))

	// A set entity follows Sequential ordering from where it was set.
	const ks = "sequential"
	h.set(ks, 41)
	h.claim(h.sequential(ks, 43, 1, newToken()), gap, at(41))
	h.claim(h.sequential(ks, 1, 1, newToken()), old, at(41))
	h.claim(h.sequential(ks, 42, 1, newToken()), granted, at(41))
}

func testSetDropsClaim(t *testing.T, newStore func(*testing.T) revguard.Store) {
	h := start(t, newStore)
	const k = "entity"
	h.apply(k, 1, none)
	a := newToken()
	h.claim(h.req(k, 7, a), granted, at(1))
	h.set(k, 5)
	h.commitLost(k, a)
	h.renewLost(k, a)
	h.peek(k, at(5))
	// The dropped claim blocks nobody.
	b := newToken()
	h.claim(h.req(k, 7, b), granted, at(5))
	h.commitLost(k, a)
	h.commit(k, b)
	h.peek(k, at(7))

	// Set to the very revision claimed: the holder still cannot commit.
	c := newToken()
	h.claim(h.req(k, 8, c), granted, at(7))
	h.set(k, 8)
	h.commitLost(k, c)
	h.peek(k, at(8))

	// A claim on an entity with nothing applied.
	const ke = "empty"
	d := newToken()
	h.claim(h.req(ke, 3, d), granted, none)
	h.set(ke, 2)
	h.commitLost(ke, d)
	h.peek(ke, at(2))
	h.apply(ke, 3, at(2))
}

func testForget(t *testing.T, newStore func(*testing.T) revguard.Store) {
	h := start(t, newStore)
	const k = "entity"
	h.apply(k, 10, none)
	h.forget(k)
	h.peek(k, none)
	h.apply(k, 0, none)
	h.forget(k)
	h.forget(k)
	h.peek(k, none)

	a := newToken()
	h.claim(h.req(k, 4, a), granted, none)
	h.forget(k)
	h.commitLost(k, a)
	h.renewLost(k, a)
	h.peek(k, none)
	b := newToken()
	h.claim(h.req(k, 4, b), granted, none)
	h.commit(k, b)
	h.peek(k, at(4))

	// A forgotten Sequential entity starts again at First.
	h.forget(k)
	h.claim(h.sequential(k, 5, 1, newToken()), gap, none)
	h.claim(h.sequential(k, 1, 1, newToken()), granted, none)
}

func testUnknown(t *testing.T, newStore func(*testing.T) revguard.Store) {
	h := start(t, newStore)
	const k = "never-seen"
	h.peek(k, none)
	h.forget(k)
	h.release(k, newToken())
	h.commitLost(k, newToken())
	h.renewLost(k, newToken())
	h.peek(k, none)
	h.peekIn(h.ns+"/other", k, none)
}
