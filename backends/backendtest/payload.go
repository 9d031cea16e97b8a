package backendtest

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"

	"github.com/revguard/revguard"
)

// The Payloads group runs on stores that implement revguard.Payloads and
// skips on the others.

// payloads is a harness on a store that implements revguard.Payloads.
type payloads struct {
	*harness
	p revguard.Payloads
}

func startPayloads(t *testing.T, newStore func(*testing.T) revguard.Store) *payloads {
	h := start(t, newStore)
	p, ok := h.s.(revguard.Payloads)
	if !ok {
		t.Skipf("%T does not implement revguard.Payloads", h.s)
	}
	return &payloads{h, p}
}

func (h *payloads) commitPayload(key string, tok revguard.Token, payload []byte) {
	h.t.Helper()
	if err := h.p.CommitPayload(h.ctx(), h.ns, key, tok, payload); err != nil {
		h.t.Fatalf("CommitPayload(%s, token %s, %s) = %v; want nil", short(key), tokenString(tok), bytesString(payload), err)
	}
}

// peekPayload requires the entity to be at want with payload want (nil:
// none; an empty payload reads as none too).
func (h *payloads) peekPayload(key string, want revguard.State, payload []byte) {
	h.t.Helper()
	got, p, err := h.p.PeekPayload(h.ctx(), h.ns, key)
	if err != nil {
		h.t.Fatalf("PeekPayload(%s): %v", short(key), err)
	}
	if !sameState(got, want) || !bytes.Equal(p, payload) || (len(payload) > 0) != (p != nil) {
		h.t.Fatalf("PeekPayload(%s) = %s with %s; want %s with %s",
			short(key), stateString(got), bytesString(p), stateString(want), bytesString(payload))
	}
	// Peek and PeekPayload read the same entity.
	h.peek(key, want)
}

// applyPayload claims rev for a fresh token and commits it with payload.
func (h *payloads) applyPayload(key string, rev revguard.Revision, before revguard.State, payload []byte) revguard.Token {
	h.t.Helper()
	tok := newToken()
	h.claim(h.req(key, rev, tok), granted, before)
	h.commitPayload(key, tok, payload)
	h.peekPayload(key, at(rev), payload)
	return tok
}

func bytesString(b []byte) string {
	switch {
	case b == nil:
		return "no payload"
	case len(b) > 24:
		return fmt.Sprintf("payload %q...(%d bytes)", b[:24], len(b))
	}
	return fmt.Sprintf("payload %q", b)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

// testPayloadLifecycle: a payload is visible exactly when its revision is,
// and survives retried commits.
func testPayloadLifecycle(t *testing.T, newStore func(*testing.T) revguard.Store) {
	h := startPayloads(t, newStore)
	const k = "entity"
	h.peekPayload(k, none, nil)

	a := newToken()
	h.claim(h.req(k, 1, a), granted, none)
	h.peekPayload(k, none, nil)
	first := []byte("HTTP/1.1 201\r\n\r\none")
	h.commitPayload(k, a, first)
	h.peekPayload(k, at(1), first)

	// Retries answer nil and keep what the first commit stored, whatever
	// they carry.
	h.commitPayload(k, a, []byte("another"))
	h.commit(k, a)
	h.peekPayload(k, at(1), first)

	// A claim on a newer revision hides nothing until it commits; a lost
	// commit stores nothing.
	b := newToken()
	h.claim(h.req(k, 2, b), granted, at(1))
	h.peekPayload(k, at(1), first)
	if err := h.p.CommitPayload(h.ctx(), h.ns, k, newToken(), []byte("lost")); !errors.Is(err, revguard.ErrLeaseLost) {
		t.Fatalf("CommitPayload by a token holding no claim = %v; want ErrLeaseLost", err)
	}
	h.peekPayload(k, at(1), first)
	second := []byte("two")
	h.commitPayload(k, b, second)
	h.peekPayload(k, at(2), second)
	h.peekPayload(k, at(2), second)

	// A commit of an unknown entity stores nothing.
	if err := h.p.CommitPayload(h.ctx(), h.ns, "unknown", newToken(), second); !errors.Is(err, revguard.ErrLeaseLost) {
		t.Fatalf("CommitPayload on an unknown entity = %v; want ErrLeaseLost", err)
	}
	h.peekPayload("unknown", none, nil)
}

// testPayloadRefusals: a claim that is refused (duplicate, stale, busy, gap,
// too far) leaves the payload alone.
func testPayloadRefusals(t *testing.T, newStore func(*testing.T) revguard.Store) {
	h := startPayloads(t, newStore)
	const k = "entity"
	h.apply(k, 5, none)
	p := []byte("six")
	h.applyPayload(k, 6, at(5), p)
	h.claim(h.req(k, 6, newToken()), dup, at(6))
	h.claim(h.advance(k, 6, newToken()), dup, at(6))
	h.claim(h.req(k, 2, newToken()), old, at(6))
	h.claim(h.advance(k, 3, newToken()), old, at(6))
	h.claim(h.sequential(k, 9, 1, newToken()), gap, at(6))
	far := h.req(k, 100, newToken())
	far.MaxStep = 10
	h.claim(far, tooFar, at(6))
	holder := newToken()
	h.claim(h.req(k, 7, holder), granted, at(6))
	h.claim(h.req(k, 8, newToken()), busy, at(6))
	h.claim(h.advance(k, 8, newToken()), busy, at(6))
	h.peekPayload(k, at(6), p)
	h.release(k, holder)
	h.peekPayload(k, at(6), p)
}

// testPayloadReplaced: whatever records a newer revision replaces or ends
// the payload, so that an old one is never read with a new revision.
func testPayloadReplaced(t *testing.T, newStore func(*testing.T) revguard.Store) {
	h := startPayloads(t, newStore)
	const k = "entity"
	h.applyPayload(k, 1, none, []byte("one"))
	h.applyPayload(k, 2, at(1), []byte("two"))

	// Commit without a payload.
	h.apply(k, 3, at(2))
	h.peekPayload(k, at(3), nil)
	h.applyPayload(k, 4, at(3), []byte("four"))

	// An empty payload is none.
	h.applyPayload(k, 5, at(4), []byte{})
	h.applyPayload(k, 6, at(5), []byte("six"))

	// The advance of AtMostOnce.
	h.claim(h.advance(k, 7, newToken()), granted, at(6))
	h.peekPayload(k, at(7), nil)

	// One token recording two revisions: the payload of the first is not
	// the second's.
	tok := newToken()
	h.claim(h.req(k, 8, tok), granted, at(7))
	h.commitPayload(k, tok, []byte("eight"))
	h.claim(h.req(k, 9, tok), granted, at(8))
	h.peekPayload(k, at(8), []byte("eight"))
	h.commit(k, tok)
	h.peekPayload(k, at(9), nil)
}

// testPayloadAdmin: Set, to any revision, and Forget end the payload.
func testPayloadAdmin(t *testing.T, newStore func(*testing.T) revguard.Store) {
	h := startPayloads(t, newStore)
	const k = "entity"
	h.applyPayload(k, 3, none, []byte("three"))
	h.set(k, 3)
	h.peekPayload(k, at(3), nil)
	h.applyPayload(k, 4, at(3), []byte("four"))
	h.set(k, 2)
	h.peekPayload(k, at(2), nil)
	h.applyPayload(k, 4, at(2), []byte("four again"))
	h.set(k, 9)
	h.peekPayload(k, at(9), nil)

	h.applyPayload(k, 10, at(9), []byte("ten"))
	h.forget(k)
	h.peekPayload(k, none, nil)
	h.apply(k, 10, none)
	h.peekPayload(k, at(10), nil)

	// A claim on a revision Set makes applied is dropped with its payload.
	tok := newToken()
	h.claim(h.req(k, 11, tok), granted, at(10))
	h.set(k, 11)
	if err := h.p.CommitPayload(h.ctx(), h.ns, k, tok, []byte("eleven")); !errors.Is(err, revguard.ErrLeaseLost) {
		t.Fatalf("CommitPayload after Set dropped its claim = %v; want ErrLeaseLost", err)
	}
	h.peekPayload(k, at(11), nil)
}

// testPayloadBounds: payloads up to MaxPayload come back byte for byte; a
// larger one is refused before anything changes.
func testPayloadBounds(t *testing.T, newStore func(*testing.T) revguard.Store) {
	h := startPayloads(t, newStore)
	const k = "entity"
	every := make([]byte, 0, 3*256)
	for i := range 3 * 256 {
		every = append(every, byte(i))
	}
	h.applyPayload(k, 1, none, every)
	h.applyPayload(k, 2, at(1), []byte{0})
	h.applyPayload(k, 3, at(2), []byte("\x00\xff\r\n\x00"))
	big := randomBytes(revguard.MaxPayload)
	big[0], big[len(big)/2], big[len(big)-1] = 0, 0, 0
	h.applyPayload(k, 4, at(3), big)

	tok := newToken()
	h.claim(h.req(k, 5, tok), granted, at(4))
	err := h.p.CommitPayload(h.ctx(), h.ns, k, tok, randomBytes(revguard.MaxPayload+1))
	if !errors.Is(err, revguard.ErrPayloadTooLarge) {
		t.Fatalf("CommitPayload of MaxPayload+1 bytes = %v; want ErrPayloadTooLarge", err)
	}
	h.peekPayload(k, at(4), big)
	// The claim is still held: the refusal changed nothing.
	h.claim(h.req(k, 5, newToken()), busy, at(4))
	h.commitPayload(k, tok, []byte("five"))
	h.peekPayload(k, at(5), []byte("five"))
}
