package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/revguard/revguard"
)

func tok(n byte) revguard.Token {
	var t revguard.Token
	t[0], t[15] = 0xab, n
	return t
}

func req(key string, rev revguard.Revision, token revguard.Token) revguard.Request {
	return revguard.Request{Key: key, Rev: rev, Token: token, Lease: time.Minute}
}

func adv(key string, rev revguard.Revision, token revguard.Token) revguard.Request {
	r := req(key, rev, token)
	r.Advance = true
	return r
}

func TestNewPanics(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer func() { _ = c.Close() }()
	assert.PanicsWithValue(t, "redisstore: New: nil client", func() { New(nil) })
	assert.PanicsWithValue(t, "redisstore: New: nil *redis.Client", func() { New((*redis.Client)(nil)) })
	assert.PanicsWithValue(t, "redisstore: New: nil *redis.ClusterClient", func() { New((*redis.ClusterClient)(nil)) })
	assert.PanicsWithValue(t, "redisstore: New: nil Option", func() { New(c, nil) })
	assert.Panics(t, func() { WithPrefix("app{1}:") })
	assert.Panics(t, func() { WithTTL(0) })
	assert.Panics(t, func() { WithTTL(-time.Second) })
	assert.Panics(t, func() { WithTTL(time.Microsecond) })
	assert.NotPanics(t, func() { New(c, WithPrefix(""), WithTTL(time.Millisecond)) })
}

func TestKeyLayout(t *testing.T) {
	s := New(redis.NewClient(&redis.Options{}))
	for _, tc := range []struct{ ns, key, want string }{
		{"", "product:42", "revguard:{:product:42}"},
		{"orders", "product:42", "revguard:{orders:product:42}"},
		{"a:b", "c", "revguard:{a%3Ab:c}"},
		{"a", "b:c", "revguard:{a:b:c}"},
		{"", "{user1}.cart", "revguard:{:%7Buser1%7D.cart}"},
		{"", "50%", "revguard:{:50%25}"},
		{"", "line\nbreak\x7f", "revguard:{:line%0Abreak%7F}"},
		{"", "with space é", "revguard:{:with space é}"},
	} {
		got, slot := s.name(tc.ns, tc.key)
		assert.Equal(t, tc.want, got, "name(%q, %q)", tc.ns, tc.key)
		assert.Equal(t, keySlot(tc.want), slot, "slot of %q", tc.want)
	}
}

// keySlot is the slot Redis Cluster computes for a key name, hash tag and all.
func keySlot(name string) uint16 {
	if i := strings.IndexByte(name, '{'); i >= 0 {
		if j := strings.IndexByte(name[i+1:], '}'); j > 0 {
			name = name[i+1 : i+1+j]
		}
	}
	return crc16([]byte(name)) % slots
}

func TestCRC16(t *testing.T) {
	assert.Equal(t, uint16(0x31C3), crc16([]byte("123456789"))) // the XMODEM check value
	assert.Equal(t, uint16(12182), keySlot("foo"))              // CLUSTER KEYSLOT foo
	assert.Equal(t, keySlot("{user1000}.following"), keySlot("{user1000}.followers"))
}

// weirdKeys are (namespace, key) pairs that a careless encoding would
// confuse with one another or that break out of a hash tag.
func weirdKeys() [][2]string {
	return [][2]string{
		{"", "a:b"}, {"a", "b"}, {"a:b", ""}, {"", "a%3Ab"}, {"a%3Ab", "c"}, {"a", "b:c"}, {"a:b", "c"},
		{"", "with space"}, {"", "with  space"}, {"", " "},
		{"", "{"}, {"", "}"}, {"", "{}"}, {"", "}{"}, {"", "{tag}"}, {"", "{tag}x"}, {"", "x{tag}"}, {"{tag}", "x"},
		{"", "%7B"}, {"", "%"}, {"", "%%"},
		{"", "new\nline"}, {"", "new\r\nline"}, {"", "tab\t"}, {"", "nul\x00byte"},
		{"", "é"}, {"", "日本語"}, {"", "🙂"},
		{"", strings.Repeat("k", revguard.MaxKeyLen)},
		{"", strings.Repeat("{", revguard.MaxKeyLen)},
		{"", strings.Repeat("é", revguard.MaxKeyLen/2)},
		{strings.Repeat("n", revguard.MaxNamespaceLen), "k"},
		{strings.Repeat(":", revguard.MaxNamespaceLen), strings.Repeat("}", revguard.MaxKeyLen)},
	}
}

// TestKeysAnyBytes checks the Redis key names of pairs a careless encoding
// would confuse: each is distinct, and its slot is the one Redis Cluster
// computes. (The conformance suite stores such keys on every deployment.)
func TestKeysAnyBytes(t *testing.T) {
	s := New(redis.NewClient(&redis.Options{}))
	names := map[string]uint16{}
	for _, p := range weirdKeys() {
		if p[1] == "" {
			continue // not a valid key; stands for a prefix of another pair
		}
		name, slot := s.name(p[0], p[1])
		_, seen := names[name]
		require.False(t, seen, "two pairs share Redis key %q", name)
		require.Equal(t, keySlot(name), slot, "slot of %q", name)
		names[name] = slot
	}
	t.Run("cluster", func(t *testing.T) {
		c := clusterClient(t)
		for name, slot := range names {
			got, err := c.ClusterKeySlot(t.Context(), name).Result()
			require.NoError(t, err)
			require.Equal(t, int64(slot), got, "CLUSTER KEYSLOT %q", name)
		}
	})
}

func TestInvalidInput(t *testing.T) {
	s := New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}))
	ctx := t.Context()
	_, err := s.Claim(ctx, req("", 1, tok(1)))
	assert.ErrorIs(t, err, revguard.ErrInvalidKey)
	_, err = s.Peek(ctx, strings.Repeat("n", 256), "k")
	assert.ErrorIs(t, err, revguard.ErrInvalidKey)
	_, err = s.ClaimBatch(ctx, []revguard.Request{req("k", 1, tok(1)), req(strings.Repeat("k", 4097), 1, tok(1))})
	assert.ErrorIs(t, err, revguard.ErrInvalidKey)
	_, err = s.CommitBatch(ctx, []revguard.Commit{{Key: "\xff"}})
	assert.ErrorIs(t, err, revguard.ErrInvalidKey)
}

func TestWrongType(t *testing.T) {
	forBackends(t, func(t *testing.T, c redis.UniversalClient) {
		ctx := t.Context()
		s := testStore(t, c)
		name, _ := s.name("", "bad")
		require.NoError(t, c.Set(ctx, name, "someone else's", 0).Err())
		require.NoError(t, s.Set(ctx, "", "good", 3))

		check := func(op string, err error) {
			t.Helper()
			require.ErrorIs(t, err, ErrCorrupt, op)
			assert.Contains(t, err.Error(), name, op)
		}
		_, err := s.Claim(ctx, req("bad", 1, tok(1)))
		check("claim", err)
		_, err = s.Claim(ctx, adv("bad", 1, tok(1)))
		check("advance", err)
		check("renew", s.Renew(ctx, "", "bad", tok(1), time.Minute))
		check("commit", s.Commit(ctx, "", "bad", tok(1)))
		check("release", s.Release(ctx, "", "bad", tok(1)))
		_, err = s.Peek(ctx, "", "bad")
		check("peek", err)
		check("set", s.Set(ctx, "", "bad", 1))
		check("forget", s.Forget(ctx, "", "bad"))
		_, err = s.ClaimBatch(ctx, []revguard.Request{adv("good", 9, tok(2)), adv("bad", 1, tok(1))})
		check("claim batch", err)
		_, err = s.CommitBatch(ctx, []revguard.Commit{{Key: "good", Token: tok(2)}, {Key: "bad", Token: tok(1)}})
		check("commit batch", err)

		v, err := c.Get(ctx, name).Result()
		require.NoError(t, err)
		assert.Equal(t, "someone else's", v, "the foreign value is left alone")
		if _, ok := c.(*redis.ClusterClient); !ok {
			// One script call: the good key of the refused batch is untouched.
			st, err := s.Peek(ctx, "", "good")
			require.NoError(t, err)
			assert.Equal(t, revguard.Revision(3), st.Applied)
		}
	})
}

func TestCorruptFields(t *testing.T) {
	forBackends(t, func(t *testing.T, c redis.UniversalClient) {
		ctx := t.Context()
		s := testStore(t, c)
		name, _ := s.name("", "k")
		for _, fields := range [][]string{
			{"rev", "abc"}, {"rev", "00042"}, {"rev", "-1"}, {"rev", "1.5"}, {"rev", ""},
			{"rev", "18446744073709551616"}, {"rev", "99999999999999999999"},
			{"claim", "x"}, {"claim", "5"}, {"claim", "5 ab"}, {"claim", "5 ab soon"}, {"claim", "5 xy 1"},
			{"claim", "05 ab 1"}, {"claim", "18446744073709551616 ab 1"}, {"claim", "5 ab 1 "},
			{"claim", "5 ab 9999999999999999"},
			// rev 4 does not end a claim on 5, so the claim is read.
			{"claim", "5 ab", "rev", "4"},
		} {
			require.NoError(t, c.Del(ctx, name).Err())
			args := make([]any, len(fields))
			for i, f := range fields {
				args[i] = f
			}
			require.NoError(t, c.HSet(ctx, name, args...).Err())
			_, err := s.Claim(ctx, req("k", 7, tok(1)))
			require.ErrorIs(t, err, ErrCorrupt, "claim on %q", fields)
			if fields[0] == "rev" {
				_, err = s.Peek(ctx, "", "k")
				require.ErrorIs(t, err, ErrCorrupt, "peek on %q", fields)
			}
			// Set repairs the entity.
			require.NoError(t, s.Set(ctx, "", "k", 6))
			res, err := s.Claim(ctx, req("k", 7, tok(1)))
			require.NoError(t, err)
			require.Equal(t, revguard.Granted, res.Verdict)
		}
	})
}

// flushScripts empties the server's script cache, on every master of a cluster.
func flushScripts(t *testing.T, c redis.UniversalClient) {
	t.Helper()
	ctx := t.Context()
	if cc, ok := c.(*redis.ClusterClient); ok {
		require.NoError(t, cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			return c.ScriptFlush(ctx).Err()
		}))
		return
	}
	require.NoError(t, c.ScriptFlush(ctx).Err())
}

func TestNoScript(t *testing.T) {
	forBackends(t, func(t *testing.T, c redis.UniversalClient) {
		ctx := t.Context()
		s := testStore(t, c)
		steps := []func() error{
			func() error { _, err := s.Claim(ctx, req("a", 1, tok(1))); return err },
			func() error { return s.Renew(ctx, "", "a", tok(1), time.Minute) },
			func() error { return s.Commit(ctx, "", "a", tok(1)) },
			func() error { _, err := s.Claim(ctx, req("a", 2, tok(2))); return err },
			func() error { return s.Release(ctx, "", "a", tok(2)) },
			func() error { _, err := s.Claim(ctx, adv("a", 3, tok(3))); return err },
			func() error { _, err := s.Peek(ctx, "", "a"); return err },
			func() error { return s.Set(ctx, "", "a", 4) },
			func() error { return s.Forget(ctx, "", "a") },
			func() error {
				reqs := make([]revguard.Request, 50)
				for i := range reqs {
					reqs[i] = req(fmt.Sprint("b", i), 1, tok(4))
				}
				res, err := s.ClaimBatch(ctx, reqs)
				for _, r := range res {
					if r.Verdict != revguard.Granted {
						return fmt.Errorf("verdict %s", r.Verdict)
					}
				}
				return err
			},
			func() error {
				commits := make([]revguard.Commit, 50)
				for i := range commits {
					commits[i] = revguard.Commit{Key: fmt.Sprint("b", i), Token: tok(4)}
				}
				errs, err := s.CommitBatch(ctx, commits)
				return errors.Join(append(errs, err)...)
			},
		}
		for i, step := range steps {
			flushScripts(t, c)
			require.NoError(t, step(), "step %d after SCRIPT FLUSH", i)
		}
		st, err := s.Peek(ctx, "", "b49")
		require.NoError(t, err)
		assert.Equal(t, revguard.State{Applied: 1, Exists: true}, st)
	})
}

// TestServerClock shows leases run on the server's clock: miniredis's clock
// moves, the test's does not.
func TestServerClock(t *testing.T) {
	m := miniredis.RunT(t)
	s := New(miniClient(t, m))
	ctx := t.Context()
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	m.SetTime(start)
	res, err := s.Claim(ctx, req("k", 1, tok(1)))
	require.NoError(t, err)
	require.Equal(t, revguard.Granted, res.Verdict)
	assert.Equal(t, fmt.Sprint("1 ", tok(1), " ", start.Add(time.Minute).UnixMilli()), m.HGet("revguard:{:k}", "claim"))

	m.SetTime(start.Add(59 * time.Second))
	res, err = s.Claim(ctx, req("k", 1, tok(2)))
	require.NoError(t, err)
	require.Equal(t, revguard.Busy, res.Verdict)

	m.SetTime(start.Add(61 * time.Second))
	require.ErrorIs(t, s.Renew(ctx, "", "k", tok(1), time.Minute), revguard.ErrLeaseLost)
	require.ErrorIs(t, s.Commit(ctx, "", "k", tok(1)), revguard.ErrLeaseLost)
	res, err = s.Claim(ctx, req("k", 1, tok(2)))
	require.NoError(t, err)
	require.Equal(t, revguard.Granted, res.Verdict)
}

// TestLayout pins down what an operator sees with redis-cli HGETALL, which
// the package doc describes.
func TestLayout(t *testing.T) {
	m := miniredis.RunT(t)
	s := New(miniClient(t, m))
	ctx := t.Context()
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	m.SetTime(start)
	name, _ := s.name("orders", "product:42")
	require.Equal(t, "revguard:{orders:product:42}", name)
	until := fmt.Sprint(start.Add(time.Minute).UnixMilli())
	hash := func() map[string]string {
		t.Helper()
		h := map[string]string{}
		fields, _ := m.HKeys(name)
		for _, f := range fields {
			h[f] = m.HGet(name, f)
		}
		return h
	}
	claim := func(r revguard.Request) {
		t.Helper()
		r.Namespace = "orders"
		res, err := s.Claim(ctx, r)
		require.NoError(t, err)
		require.Equal(t, revguard.Granted, res.Verdict)
	}
	big := revguard.Revision(math.MaxUint64)

	claim(req("product:42", 7, tok(1)))
	require.Equal(t, map[string]string{"claim": "7 " + tok(1).String() + " " + until}, hash())
	require.NoError(t, s.Commit(ctx, "orders", "product:42", tok(1)))
	// The claim stays as a record: its revision is rev, so it has ended.
	require.Equal(t, map[string]string{"rev": "7", "last": tok(1).String(), "claim": "7 " + tok(1).String() + " " + until}, hash())

	claim(req("product:42", big, tok(2)))
	require.Equal(t, map[string]string{"rev": "7", "last": tok(1).String(), "claim": "18446744073709551615 " + tok(2).String() + " " + until}, hash())
	require.NoError(t, s.Release(ctx, "orders", "product:42", tok(2)))
	require.Equal(t, map[string]string{"rev": "7", "last": tok(1).String()}, hash())

	claim(req("product:42", 8, tok(3)))
	m.SetTime(start.Add(2 * time.Minute)) // the claim on 8 expires unused
	claim(adv("product:42", 9, tok(4)))
	require.ErrorIs(t, s.Commit(ctx, "orders", "product:42", tok(3)), revguard.ErrLeaseLost)
	require.Equal(t, map[string]string{"rev": "9", "last": tok(4).String(), "prior": tok(1).String() + ":7"}, hash(),
		"an advance deletes a claim, and moves the recording it replaces to prior")
	claim(adv("product:42", 10, tok(5)))
	claim(adv("product:42", 11, tok(6)))
	claim(adv("product:42", 12, tok(7)))
	require.Equal(t, map[string]string{"rev": "12", "last": tok(7).String(),
		"prior": tok(6).String() + ":11 " + tok(5).String() + ":10 " + tok(4).String() + ":9"}, hash(), "prior keeps three")
	// The advance of 10, sent again after two newer ones: still a retry.
	res, err := s.Claim(ctx, revguard.Request{Namespace: "orders", Key: "product:42", Rev: 10, Token: tok(5), Advance: true, Lease: time.Minute})
	require.NoError(t, err)
	require.Equal(t, revguard.Reply{Verdict: revguard.Granted, State: revguard.State{Applied: 12, Exists: true}}, res)
	res, err = s.Claim(ctx, revguard.Request{Namespace: "orders", Key: "product:42", Rev: 10, Token: tok(6), Advance: true, Lease: time.Minute})
	require.NoError(t, err)
	require.Equal(t, revguard.Old, res.Verdict, "another token's advance of 10 is stale")

	require.NoError(t, s.Set(ctx, "orders", "product:42", 3))
	require.Equal(t, map[string]string{"rev": "3"}, hash())
}

// TestBatchRepeatedKey checks that a batch naming an entity twice (which
// the guard never sends) is decided as its requests one after another.
func TestBatchRepeatedKey(t *testing.T) {
	forBackends(t, func(t *testing.T, c redis.UniversalClient) {
		ctx := t.Context()
		s := testStore(t, c)
		verdicts := func(reqs ...revguard.Request) []revguard.Verdict {
			t.Helper()
			res, err := s.ClaimBatch(ctx, reqs)
			require.NoError(t, err)
			out := make([]revguard.Verdict, len(res))
			for i, r := range res {
				out[i] = r.Verdict
			}
			return out
		}
		b, d := revguard.Busy, revguard.Dup
		g := revguard.Granted
		require.Equal(t, []revguard.Verdict{g, b, g}, verdicts(req("k", 1, tok(1)), req("k", 2, tok(2)), req("k", 1, tok(1))))
		require.NoError(t, s.Commit(ctx, "", "k", tok(1)))
		require.Equal(t, []revguard.Verdict{g, g, d, g}, verdicts(adv("k", 3, tok(3)), adv("k", 3, tok(3)), adv("k", 3, tok(4)), req("k", 4, tok(5))))
		require.Equal(t, []revguard.Verdict{b, g}, verdicts(adv("k", 5, tok(6)), adv("k", 4, tok(5))))
		st, err := s.Peek(ctx, "", "k")
		require.NoError(t, err)
		require.Equal(t, revguard.State{Applied: 4, Exists: true}, st)
	})
}

func TestExpiry(t *testing.T) {
	m := miniredis.RunT(t)
	c := miniClient(t, m)
	ctx := t.Context()
	s := New(c)
	name, _ := s.name("", "k")

	// A key that only holds a claim lives as long as the claim.
	_, err := s.Claim(ctx, req("k", 1, tok(1)))
	require.NoError(t, err)
	assert.InDelta(t, time.Minute, m.TTL(name), float64(time.Second))
	require.NoError(t, s.Renew(ctx, "", "k", tok(1), 2*time.Minute))
	assert.InDelta(t, 2*time.Minute, m.TTL(name), float64(time.Second))
	require.NoError(t, s.Commit(ctx, "", "k", tok(1)))
	assert.Zero(t, m.TTL(name), "an applied revision lives for ever")
	_, err = s.Claim(ctx, req("k", 2, tok(2)))
	require.NoError(t, err)
	assert.Zero(t, m.TTL(name), "a claim does not shorten an applied revision's life")
	require.NoError(t, s.Release(ctx, "", "k", tok(2)))
	require.True(t, m.Exists(name))
	fields, err := m.HKeys(name)
	require.NoError(t, err)
	require.Equal(t, []string{"last", "rev"}, fields)

	// A released claim on an empty entity leaves nothing behind.
	_, err = s.Claim(ctx, req("fresh", 1, tok(3)))
	require.NoError(t, err)
	require.NoError(t, s.Release(ctx, "", "fresh", tok(3)))
	assert.Equal(t, []string{name}, m.Keys())

	// An advance or Set on a key that held only a claim makes it permanent.
	for _, key := range []string{"k2", "k3"} {
		_, err = s.Claim(ctx, req(key, 5, tok(4)))
		require.NoError(t, err)
	}
	res, err := s.Claim(ctx, adv("k2", 5, tok(4)))
	require.NoError(t, err)
	require.Equal(t, revguard.Granted, res.Verdict)
	require.NoError(t, s.Set(ctx, "", "k3", 5))
	for _, key := range []string{"k2", "k3"} {
		name, _ := s.name("", key)
		assert.Zero(t, m.TTL(name), key)
		assert.Empty(t, m.HGet(name, "claim"), "%s: the claim has ended", key)
	}

	// WithTTL: an applied revision lives d after it was recorded, and a
	// claim keeps its key alive at least as long as its lease.
	ts := New(c, WithPrefix("ttl:"), WithTTL(time.Hour))
	tname, _ := ts.name("", "k")
	_, err = ts.Claim(ctx, adv("k", 1, tok(5)))
	require.NoError(t, err)
	assert.Equal(t, time.Hour, m.TTL(tname))
	r := req("k", 2, tok(6))
	r.Lease = 2 * time.Hour
	_, err = ts.Claim(ctx, r)
	require.NoError(t, err)
	assert.Equal(t, 2*time.Hour, m.TTL(tname))
	require.NoError(t, ts.Commit(ctx, "", "k", tok(6)))
	assert.Equal(t, time.Hour, m.TTL(tname))
	require.NoError(t, ts.Set(ctx, "", "k", 3))
	assert.Equal(t, time.Hour, m.TTL(tname))
	m.FastForward(time.Hour)
	st, err := ts.Peek(ctx, "", "k")
	require.NoError(t, err)
	assert.False(t, st.Exists, "the entity expired and accepts any revision again")
}
