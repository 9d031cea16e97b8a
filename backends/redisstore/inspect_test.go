package redisstore

import (
	"fmt"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/revguard/revguard"
)

// TestParseName checks that parseName is the exact inverse of name: every
// (namespace, key) comes back as it went in, and a name that no pair
// encodes to is refused, so that each name decodes to one pair at most.
func TestParseName(t *testing.T) {
	pairs := weirdKeys()
	for c := range 256 {
		pairs = append(pairs, [2]string{string(rune(c)), string([]byte{byte(c)})}, [2]string{"n" + string([]byte{byte(c)}), "k"})
	}
	for _, k := range []string{"%", "%%", "%25", "%2", "%zz", "{", "}", "{}", "%7B", "%7b", ":", "a:b", ":a:", "日本語:%", "🙂{x}", "\x00", "\x1f\x7f\x80", "\xff"} {
		pairs = append(pairs, [2]string{"", k}, [2]string{k, "k"}, [2]string{k, k}, [2]string{"a:b", k})
	}
	for _, prefix := range []string{DefaultPrefix, "", "app:1:", "%:"} {
		s := New(redis.NewClient(&redis.Options{}), WithPrefix(prefix))
		for _, p := range pairs {
			if p[1] == "" {
				continue
			}
			name, _ := s.name(p[0], p[1])
			ns, key, ok := s.parseName(name)
			require.True(t, ok, "parseName(%q), the name of %q", name, p)
			require.Equal(t, p, [2]string{ns, key}, "parseName(%q)", name)
		}
		for _, name := range []string{
			"", prefix, prefix + "{", prefix + "{}", prefix + "{ns}", prefix + "{ns:k", prefix + "{ns:k}x", prefix + "{ns:k}}",
			prefix + "ns:k}", prefix + "x{ns:k}", prefix + "{ns:k{}", prefix + "{n{s:k}",
			prefix + "{ns:%}", prefix + "{ns:%4}", prefix + "{ns:%zz}", prefix + "{ns:%7b}", prefix + "{ns:%41}", prefix + "{ns:%3A}",
			prefix + "{n%3as:k}", prefix + "{ns:\n}", prefix + "{ns:\x7f}", prefix + "{n\x00s:k}", prefix + "{n%41:k}",
		} {
			_, _, ok := s.parseName(name)
			assert.False(t, ok, "parseName(%q) accepted a name the store does not write", name)
		}
	}
	s := New(redis.NewClient(&redis.Options{}), WithPrefix("p:"))
	_, _, ok := s.parseName("revguard:{ns:k}")
	assert.False(t, ok, "a name under another prefix")
}

// TestScanPattern checks that the MATCH pattern is literal in what it takes
// from the prefix, the namespace and the match, on the servers as on
// miniredis: only the namespace's own keys come back.
func TestScanPattern(t *testing.T) {
	forBackends(t, func(t *testing.T, c redis.UniversalClient) {
		ctx := t.Context()
		s := testStore(t, c)
		s.prefix += `*?[]\`
		// Neighbours that a glob would take for the namespace "a*b?[c]\" or
		// the key prefix "x*".
		for _, ns := range []string{`a*b?[c]\`, `axxb?[c]\`, `a*b![c]\`, `a*b?c\`, `a*b?[c]`, `a*b?[c]\x`} {
			for _, k := range []string{"x*y", "xzy", "x*", "k"} {
				require.NoError(t, s.Set(ctx, ns, k, 1))
			}
		}
		pattern := s.scanPattern(`a*b?[c]\`, "x*[y]")
		nodes, err := s.nodes(ctx)
		require.NoError(t, err)
		var names []string
		for _, n := range nodes {
			got, err := scanAll(t, n, pattern)
			require.NoError(t, err)
			names = append(names, got...)
		}
		// The match's part before its first wildcard narrows the pattern.
		want := []string{}
		for _, k := range []string{"x*y", "xzy", "x*"} {
			name, _ := s.name(`a*b?[c]\`, k)
			want = append(want, name)
		}
		assert.ElementsMatch(t, want, names, "SCAN MATCH %q", pattern)

		var keys []string
		require.NoError(t, s.Scan(ctx, `a*b?[c]\`, `x\*`, func(e revguard.Entity) error {
			keys = append(keys, e.Key)
			return nil
		}))
		assert.Equal(t, []string{"x*"}, keys)
	})
}

func scanAll(t *testing.T, c redis.Cmdable, pattern string) ([]string, error) {
	var out []string
	var cursor uint64
	for {
		names, next, err := c.Scan(t.Context(), cursor, pattern, scanCount).Result()
		if err != nil {
			return nil, err
		}
		out = append(out, names...)
		if next == 0 {
			return out, nil
		}
		cursor = next
	}
}

// TestScanRing scans a Ring of two servers, which shards by its own hash
// of each key: every entity is found, on whichever shard holds it.
func TestScanRing(t *testing.T) {
	m1, m2 := miniredis.RunT(t), miniredis.RunT(t)
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": m1.Addr(), "b": m2.Addr()}})
	t.Cleanup(func() { _ = ring.Close() })
	s := New(ring)
	ctx := t.Context()
	want := map[string]revguard.Revision{}
	for i := range 100 {
		k := fmt.Sprint("k", i)
		require.NoError(t, s.Set(ctx, "ns", k, revguard.Revision(i)))
		want[k] = revguard.Revision(i)
	}
	require.NotEmpty(t, m1.Keys())
	require.NotEmpty(t, m2.Keys(), "the ring put every key on one shard")
	got := map[string]revguard.Revision{}
	require.NoError(t, s.Scan(ctx, "ns", "", func(e revguard.Entity) error {
		got[e.Key] = e.Applied
		return nil
	}))
	assert.Equal(t, want, got)
	e, err := s.Inspect(ctx, "ns", "k42")
	require.NoError(t, err)
	assert.Equal(t, revguard.Entity{Key: "k42", State: revguard.State{Applied: 42, Exists: true}}, e)
}

// TestInspectServerClock shows the lease left is read on the server's
// clock, to the millisecond, by Inspect and Scan alike.
func TestInspectServerClock(t *testing.T) {
	m := miniredis.RunT(t)
	s := New(miniClient(t, m))
	ctx := t.Context()
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	m.SetTime(start)
	_, err := s.Claim(ctx, req("k", 7, tok(1)))
	require.NoError(t, err)

	m.SetTime(start.Add(20*time.Second + 250*time.Millisecond))
	want := revguard.Entity{Key: "k", Claim: &revguard.ClaimState{Rev: 7, Token: tok(1), Left: 39750 * time.Millisecond}}
	e, err := s.Inspect(ctx, "", "k")
	require.NoError(t, err)
	assert.Equal(t, want, e)
	var scanned []revguard.Entity
	require.NoError(t, s.Scan(ctx, "", "", func(e revguard.Entity) error {
		scanned = append(scanned, e)
		return nil
	}))
	assert.Equal(t, []revguard.Entity{want}, scanned)

	m.SetTime(start.Add(time.Minute))
	e, err = s.Inspect(ctx, "", "k")
	require.NoError(t, err)
	assert.Equal(t, revguard.Entity{Key: "k"}, e, "the lease ends exactly at its length")
}

// TestInspectTTL: an entity that expired (WithTTL) is not there.
func TestInspectTTL(t *testing.T) {
	m := miniredis.RunT(t)
	s := New(miniClient(t, m), WithTTL(time.Hour))
	ctx := t.Context()
	require.NoError(t, s.Set(ctx, "ns", "old", 1))
	m.FastForward(30 * time.Minute)
	require.NoError(t, s.Set(ctx, "ns", "new", 2))
	m.FastForward(31 * time.Minute)

	e, err := s.Inspect(ctx, "ns", "old")
	require.NoError(t, err)
	assert.Equal(t, revguard.Entity{Key: "old"}, e)
	var keys []string
	require.NoError(t, s.Scan(ctx, "ns", "", func(e revguard.Entity) error {
		keys = append(keys, e.Key)
		return nil
	}))
	assert.Equal(t, []string{"new"}, keys)
}

// TestInspectCorrupt: a key in the store's key space that revguard did not
// write is an error for Inspect and Scan, naming the key, and changes
// nothing; a name the store does not write is no entity, and Scan skips it.
func TestInspectCorrupt(t *testing.T) {
	forBackends(t, func(t *testing.T, c redis.UniversalClient) {
		ctx := t.Context()
		s := testStore(t, c)
		scan := func(ns string) ([]string, error) {
			var keys []string
			err := s.Scan(ctx, ns, "", func(e revguard.Entity) error {
				keys = append(keys, e.Key)
				return nil
			})
			return keys, err
		}

		name, _ := s.name("strings", "bad")
		require.NoError(t, c.Set(ctx, name, "someone else's", 0).Err())
		_, err := s.Inspect(ctx, "strings", "bad")
		require.ErrorIs(t, err, ErrCorrupt)
		assert.Contains(t, err.Error(), name)
		_, err = scan("strings")
		require.ErrorIs(t, err, ErrCorrupt)
		assert.Contains(t, err.Error(), name)
		keys, err := scan("strings-other")
		require.NoError(t, err)
		assert.Empty(t, keys)

		for i, fields := range [][]string{
			{"rev", "abc"}, {"rev", "00042"}, {"rev", ""}, {"rev", "18446744073709551616"},
			{"claim", "x"}, {"claim", "5 ab 1"}, {"claim", "5 " + tok(1).String() + " soon"},
			{"claim", "05 " + tok(1).String() + " 1"}, {"claim", "5  " + tok(1).String() + " 1"},
			{"claim", "5 " + tok(1).String() + " 9999999999999999"},
			{"rev", "4", "claim", "5 " + tok(1).String()},
		} {
			ns := fmt.Sprint("fields", i)
			name, _ := s.name(ns, "k")
			args := make([]any, len(fields))
			for i, f := range fields {
				args[i] = f
			}
			require.NoError(t, c.HSet(ctx, name, args...).Err())
			_, err := s.Inspect(ctx, ns, "k")
			require.ErrorIs(t, err, ErrCorrupt, "inspect of %q", fields)
			_, err = scan(ns)
			require.ErrorIs(t, err, ErrCorrupt, "scan of %q", fields)
			got, err := c.HGetAll(ctx, name).Result()
			require.NoError(t, err)
			assert.Len(t, got, len(fields)/2, "left as it was")
		}

		// An ended claim is not read: its rest does not matter.
		name, _ = s.name("ended", "k")
		require.NoError(t, c.HSet(ctx, name, "rev", "5", "claim", "5 whatever").Err())
		e, err := s.Inspect(ctx, "ended", "k")
		require.NoError(t, err)
		assert.Equal(t, revguard.Entity{Key: "k", State: revguard.State{Applied: 5, Exists: true}}, e)

		require.NoError(t, s.Set(ctx, "foreign", "good", 1))
		for _, foreign := range []string{"{foreign:k}x", "{foreign:%zz}", "{foreign:%41}", "{foreign:k", "{foreign:\xff}", "{foreign:}"} {
			require.NoError(t, c.HSet(ctx, s.prefix+foreign, "rev", "1").Err())
		}
		keys, err = scan("foreign")
		require.NoError(t, err)
		assert.Equal(t, []string{"good"}, keys)
	})
}

func TestScanInput(t *testing.T) {
	s := New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}))
	ctx := t.Context()
	nop := func(revguard.Entity) error { return nil }
	err := s.Scan(ctx, "ns", "[", nop)
	require.ErrorIs(t, err, path.ErrBadPattern)
	assert.Contains(t, err.Error(), `pattern "["`)
	require.ErrorIs(t, s.Scan(ctx, strings.Repeat("n", 256), "", nop), revguard.ErrInvalidKey)
	_, err = s.Inspect(ctx, "ns", "")
	require.ErrorIs(t, err, revguard.ErrInvalidKey)
	_, err = s.Inspect(ctx, "ns", string([]byte{0xff}))
	require.ErrorIs(t, err, revguard.ErrInvalidKey)
}
