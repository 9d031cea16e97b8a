package memstore_test

import (
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/backendtest"
	"github.com/revguard/revguard/backends/memstore"
)

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) revguard.Store { return memstore.New() }, backendtest.Features{})
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestWithClockExpiry(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 5, 21, 9, 0, 0, 0, time.UTC)}
	s := memstore.New(memstore.WithClock(clock.Now))
	ctx := t.Context()
	claim := func(key string, rev revguard.Revision, tok revguard.Token, want revguard.Verdict) {
		t.Helper()
		res, err := s.Claim(ctx, revguard.Request{Key: key, Rev: rev, Token: tok, Lease: time.Minute})
		if err != nil || res.Verdict != want {
			t.Fatalf("Claim(%s, %d) = %v, %v; want %v", key, rev, res.Verdict, err, want)
		}
	}
	a, b, c := revguard.Token{1}, revguard.Token{2}, revguard.Token{3}

	claim("lapses", 1, a, revguard.Granted)
	claim("renewed", 1, a, revguard.Granted)
	clock.Add(59 * time.Second)
	claim("lapses", 1, b, revguard.Busy)
	if err := s.Renew(ctx, "", "renewed", a, time.Minute); err != nil {
		t.Fatalf("Renew of a live claim: %v", err)
	}

	clock.Add(time.Second)
	// The lease ends exactly at its length: a claim is live strictly before.
	claim("lapses", 1, b, revguard.Granted)
	claim("renewed", 1, b, revguard.Busy)
	if err := s.Commit(ctx, "", "lapses", a); !errors.Is(err, revguard.ErrLeaseLost) {
		t.Fatalf("Commit by the expired holder = %v; want ErrLeaseLost", err)
	}
	if err := s.Renew(ctx, "", "lapses", a, time.Minute); !errors.Is(err, revguard.ErrLeaseLost) {
		t.Fatalf("Renew by the expired holder = %v; want ErrLeaseLost", err)
	}

	clock.Add(time.Minute)
	if err := s.Commit(ctx, "", "renewed", a); !errors.Is(err, revguard.ErrLeaseLost) {
		t.Fatalf("Commit after the renewed lease ran out = %v; want ErrLeaseLost", err)
	}
	if st, err := s.Peek(ctx, "", "renewed"); err != nil || st.Exists {
		t.Fatalf("Peek after a lapsed claim = %+v, %v; want nothing applied", st, err)
	}
	// b's claim on "lapses" ran out too, unrenewed; c takes over.
	claim("lapses", 1, c, revguard.Granted)
	if err := s.Commit(ctx, "", "lapses", b); !errors.Is(err, revguard.ErrLeaseLost) {
		t.Fatalf("Commit by the second expired holder = %v; want ErrLeaseLost", err)
	}
	if err := s.Commit(ctx, "", "lapses", c); err != nil {
		t.Fatalf("Commit by the live holder: %v", err)
	}
	if st, err := s.Peek(ctx, "", "lapses"); err != nil || st != (revguard.State{Applied: 1, Exists: true}) {
		t.Fatalf("Peek = %+v, %v; want applied 1", st, err)
	}
}

func TestReleaseLeavesNothing(t *testing.T) {
	s := memstore.New()
	ctx := t.Context()
	tok := revguard.Token{1}
	if _, err := s.Claim(ctx, revguard.Request{Key: "k", Rev: 1, Token: tok, Lease: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(ctx, "", "k", tok); err != nil {
		t.Fatal(err)
	}
	if n := s.Len(); n != 0 {
		t.Fatalf("Len after releasing the only claim = %d; want 0", n)
	}
}

// TestInspectClock: the lease left runs on WithClock's clock, and a claim
// is not reported once it has run out.
func TestInspectClock(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 5, 21, 9, 0, 0, 0, time.UTC)}
	s := memstore.New(memstore.WithClock(clock.Now))
	ctx := t.Context()
	tok := revguard.Token{1}
	if _, err := s.Claim(ctx, revguard.Request{Namespace: "ns", Key: "k", Rev: 3, Token: tok, Lease: time.Minute}); err != nil {
		t.Fatal(err)
	}
	clock.Add(20 * time.Second)
	want := revguard.Entity{Key: "k", Claim: &revguard.ClaimState{Rev: 3, Token: tok, Left: 40 * time.Second}}
	if e, err := s.Inspect(ctx, "ns", "k"); err != nil || !reflect.DeepEqual(e, want) {
		t.Fatalf("Inspect = %+v, %v; want %+v", e, err, want)
	}
	var scanned []revguard.Entity
	if err := s.Scan(ctx, "ns", "", func(e revguard.Entity) error {
		scanned = append(scanned, e)
		return nil
	}); err != nil || !reflect.DeepEqual(scanned, []revguard.Entity{want}) {
		t.Fatalf("Scan = %+v, %v; want %+v", scanned, err, want)
	}
	clock.Add(40 * time.Second)
	if e, err := s.Inspect(ctx, "ns", "k"); err != nil || !reflect.DeepEqual(e, revguard.Entity{Key: "k"}) {
		t.Fatalf("Inspect after the lease ran out = %+v, %v; want nothing", e, err)
	}
	scanned = nil
	if err := s.Scan(ctx, "ns", "", func(e revguard.Entity) error {
		scanned = append(scanned, e)
		return nil
	}); err != nil || len(scanned) != 0 {
		t.Fatalf("Scan after the lease ran out = %+v, %v; want nothing", scanned, err)
	}
}
