package backendtest

import (
	"testing"
	"time"

	"github.com/revguard/revguard"
)

// Leases in the expiry tests: short enough to keep the suite fast, long
// enough that a loaded machine running a server with -race keeps a claim
// it renews every renewEvery.
const (
	shortLease = 250 * time.Millisecond
	pastLease  = shortLease + 200*time.Millisecond
	renewEvery = shortLease / 3
)

func testLifecycle(t *testing.T, newStore func(*testing.T) revguard.Store) {
	h := start(t, newStore)
	const k = "entity"
	a := newToken()
	h.claim(h.req(k, 5, a), granted, none)
	h.peek(k, none)
	h.claim(h.req(k, 5, newToken()), busy, none)
	h.claim(h.req(k, 6, newToken()), busy, none)
	h.renew(k, a, longLease)
	h.peek(k, none)
	h.commit(k, a)
	h.peek(k, at(5))

	b := newToken()
	h.claim(h.req(k, 7, b), granted, at(5))
	h.claim(h.req(k, 7, newToken()), busy, at(5))
	h.claim(h.req(k, 9, newToken()), busy, at(5))
	// Dropping a duplicate or stale event is right whoever holds the claim.
	h.claim(h.req(k, 5, newToken()), dup, at(5))
	h.claim(h.req(k, 3, newToken()), old, at(5))
	h.claim(h.advance(k, 5, newToken()), dup, at(5))
	h.peek(k, at(5))

	// Release lets the redelivery in at once, with a token of its own.
	h.release(k, b)
	h.peek(k, at(5))
	c := newToken()
	h.claim(h.req(k, 7, c), granted, at(5))
	h.commitLost(k, b)
	h.renewLost(k, b)
	h.commit(k, c)
	h.peek(k, at(7))

	// Released before anything was applied: the entity is empty again.
	const k2 = "released-empty"
	d := newToken()
	h.claim(h.req(k2, 3, d), granted, none)
	h.release(k2, d)
	h.peek(k2, none)
	h.apply(k2, 2, none)
}

func testWrongToken(t *testing.T, newStore func(*testing.T) revguard.Store) {
	h := start(t, newStore)
	const k = "entity"
	h.apply(k, 5, none)
	holder, other := newToken(), newToken()
	h.claim(h.req(k, 6, holder), granted, at(5))

	h.commitLost(k, other)
	h.renewLost(k, other)
	h.release(k, other)
	h.peek(k, at(5))
	h.claim(h.req(k, 6, newToken()), busy, at(5))

	// The same holds with no claim at all.
	h.commitLost("unclaimed", other)
	h.renewLost("unclaimed", other)
	h.release("unclaimed", other)
	h.peek("unclaimed", none)

	h.commit(k, holder)
	h.peek(k, at(6))
}

func testExpiry(t *testing.T, newStore func(*testing.T) revguard.Store) {
	h := start(t, newStore)
	const taken, lapsed, advanced = "taken-over", "lapsed", "advanced-over"
	a1, a2, a3 := newToken(), newToken(), newToken()
	h.claimFor(taken, 5, a1, shortLease, none)
	h.set(lapsed, 1)
	h.claimFor(lapsed, 5, a2, shortLease, at(1))
	h.claimFor(advanced, 5, a3, shortLease, none)
	h.claim(h.req(taken, 5, newToken()), busy, none)
	time.Sleep(pastLease)

	b := newToken()
	h.claim(h.req(taken, 5, b), granted, none)
	h.commitLost(taken, a1)
	h.renewLost(taken, a1)
	h.release(taken, a1)
	h.claim(h.req(taken, 5, newToken()), busy, none)
	h.commit(taken, b)
	h.peek(taken, at(5))

	// Expiry alone, with nobody claiming after, already fences the holder.
	h.commitLost(lapsed, a2)
	h.renewLost(lapsed, a2)
	h.peek(lapsed, at(1))
	h.apply(lapsed, 6, at(1))

	h.claim(h.advance(advanced, 6, newToken()), granted, none)
	h.commitLost(advanced, a3)
	h.peek(advanced, at(6))
}

func testRenew(t *testing.T, newStore func(*testing.T) revguard.Store) {
	h := start(t, newStore)
	const k = "entity"
	a := newToken()
	r := h.req(k, 5, a)
	r.Lease = shortLease
	h.claim(r, granted, none)
	for end := time.Now().Add(2 * shortLease); time.Now().Before(end); {
		time.Sleep(renewEvery)
		h.renew(k, a, shortLease)
	}
	h.claim(h.req(k, 5, newToken()), busy, none)
	h.commit(k, a)
	h.peek(k, at(5))
}
