package proof

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
	"github.com/revguard/revguard/backends/redisstore"
	"github.com/revguard/revguard/backends/sqlstore"
)

// The fuzz targets decode a byte string into a sequence of store calls on
// three entities with five tokens, run it on a store, and check every
// answer against the model: the differential test of the stores' inputs
// (revisions at the edges of doubles, of signed and unsigned 64 bits, and of
// the ten-digit halves the Redis scripts split revisions into; sequential
// and MaxStep requests; retried tokens). Seed corpora are in testdata/fuzz.
//
//	go test -run '^$' -fuzz '^FuzzMemstore$' -fuzztime 1m

// fuzzRevs are the revisions a fuzzed call picks from.
var fuzzRevs = []revguard.Revision{
	0, 1, 2, 3, 4, 5,
	1<<53 - 1, 1 << 53, 1<<53 + 1,
	9_999_999_999, 10_000_000_000, 10_000_000_001,
	math.MaxInt64 - 1, math.MaxInt64, math.MaxInt64 + 1,
	math.MaxUint64 - 2, math.MaxUint64 - 1, math.MaxUint64,
}

var fuzzSteps = []uint64{0, 0, 1, 2, 1 << 53, math.MaxInt64, math.MaxUint64 - 1, math.MaxUint64}

// decodeOps reads three bytes per call:
//
//	b0: the call (low 3 bits) and the entity (the rest, mod 3)
//	b1: the token (1 + b1 mod 5); bit 7 sequential; bits 4-6 MaxStep (fuzzSteps)
//	b2: the revision (fuzzRevs); for a sequential request, bits 5-7 pick its First
func decodeOps(data []byte) []input {
	kinds := []opKind{opClaim, opAdvance, opCommit, opRelease, opRenew, opPeek, opSet, opForget}
	var ops []input
	for i := 0; i+3 <= len(data) && len(ops) < 200; i += 3 {
		b0, b1, b2 := data[i], data[i+1], data[i+2]
		in := input{
			kind: kinds[b0&7],
			key:  fmt.Sprintf("e%d", (b0>>3)%3),
			tok:  1 + int(b1%5), // 0 is the model's "no token"
			rev:  fuzzRevs[int(b2)%len(fuzzRevs)],
		}
		if in.kind == opClaim || in.kind == opAdvance {
			if b1&0x80 != 0 {
				in.seq, in.first = true, fuzzRevs[int(b2>>5)%len(fuzzRevs)]
			} else {
				in.maxStep = fuzzSteps[(b1>>4)&7]
			}
		}
		ops = append(ops, in)
	}
	return ops
}

// differential runs ops on s, one after another, and fails t at the first
// answer the model does not allow.
func differential(t *testing.T, s revguard.Store, ops []input) {
	h := newHistory(unique("fuzz-"))
	m := leaseModel{}
	states := map[string][]entity{}
	ctx := context.Background()
	var done []string
	for _, in := range ops {
		in.lease = int64(time.Hour)
		out := h.do(ctx, s, 0, in)
		if out.unknown {
			t.Fatalf("%s failed on a healthy store: %v", describe(in, out), h.errors)
		}
		in.call, in.ret = h.now(), h.now() // leases of an hour: time plays no part
		cur, ok := states[in.key]
		if !ok {
			cur = []entity{{}}
		}
		var next []entity
		for _, st := range cur {
			next = append(next, m.step(st, in, out)...)
		}
		done = append(done, in.key+": "+describe(in, out))
		if len(next) == 0 {
			var allowed []string
			for _, st := range cur {
				for _, b := range m.branches(st, in) {
					for _, o := range apply(b, in) {
						allowed = append(allowed, describe(in, o.out))
					}
				}
			}
			t.Fatalf("the store answered %s; the model allows only %s\nafter:\n  %s",
				describe(in, out), strings.Join(allowed, " or "), strings.Join(done, "\n  "))
		}
		states[in.key] = next
	}
}

// fuzzSeeds are inputs every target starts from (beside testdata/fuzz):
// a claim and commit, a retried advance, a stray token, the uint64 edges.
var fuzzSeeds = [][]byte{
	{0, 1, 1, 2, 1, 0, 5, 0, 0},                   // claim t1 rev 1, commit t1, peek
	{1, 2, 3, 1, 2, 3, 0, 3, 2, 5, 0, 0},          // advance t2 rev 3 twice, claim below it, peek
	{0, 1, 17, 0, 2, 16, 2, 2, 0, 2, 1, 0},        // two tokens on 2^64-1 and 2^64-2, commits by both
	{0, 129, 1, 0, 129, 2, 2, 1, 0, 0, 129, 2},    // sequential from 1
	{6, 0, 8, 0, 1, 7, 0, 17, 6, 2, 1, 0},         // set 2^53+1, claim 2^53, maxstep
	{0, 3, 4, 4, 3, 0, 3, 3, 0, 7, 0, 0, 0, 4, 4}, // claim, renew, release, forget, claim again
}

func addSeeds(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
}

func FuzzMemstore(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		differential(t, memstore.New(), decodeOps(data))
	})
}

func FuzzMiniredis(f *testing.F) {
	addSeeds(f)
	m := miniredis.RunT(f)
	c := redis.NewClient(&redis.Options{Addr: m.Addr()})
	f.Cleanup(func() { _ = c.Close() })
	s := redisstore.New(c)
	f.Fuzz(func(t *testing.T, data []byte) {
		differential(t, s, decodeOps(data)) // a namespace of its own per input
	})
}

func FuzzSQLite(f *testing.F) {
	addSeeds(f)
	db := openDB(f, "sqlite", "file:"+filepath.Join(f.TempDir(), "fuzz.db")+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)", "SQLite")
	s, err := sqlstore.New(db, sqlstore.SQLite)
	if err != nil {
		f.Fatal(err)
	}
	if err := s.CreateTable(context.Background()); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		differential(t, s, decodeOps(data))
	})
}
