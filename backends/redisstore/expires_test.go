package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/revguard/revguard"
)

type ev struct {
	key string
	rev revguard.Revision
}

func extractEv(e ev) (string, revguard.Revision, error) { return e.key, e.rev, nil }

// A drop cache over expiring entities would drop what the store, after the
// expiry, applies: New refuses the pair, and the cache works without TTL.
func TestDropCacheAndTTL(t *testing.T) {
	c := miniClient(t, miniredis.RunT(t))
	if !New(c, WithTTL(time.Hour)).Expires() || New(c).Expires() {
		t.Fatal("Expires does not follow WithTTL")
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("New accepted WithDropCache over a store with WithTTL")
			}
		}()
		revguard.New(New(c, WithTTL(time.Hour)), extractEv, revguard.WithDropCache(8))
	}()
	g := revguard.New(New(c), extractEv, revguard.WithDropCache(8))
	ctx := context.Background()
	nop := func(context.Context, ev) error { return nil }
	for _, want := range []revguard.Outcome{revguard.Applied, revguard.Duplicate, revguard.Duplicate} {
		if out, err := g.Handle(ctx, ev{"a", 1}, nop); out != want || err != nil {
			t.Fatalf("Handle = %v, %v; want %v", out, err, want)
		}
	}
	if n := g.Stats().Cached; n != 2 {
		t.Errorf("Stats().Cached = %d, want 2", n)
	}
}
