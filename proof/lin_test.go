package proof

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/revguard/revguard"
)

// linConfig sizes one recorded history.
type linConfig struct {
	name    string
	clients int
	keys    int
	ops     int           // store calls in the whole history
	lease   time.Duration // the lease of every claim
	hold    time.Duration // the longest a client sits on a claim before committing
	tight   float64       // share of calls given a deadline short enough to cut some off
	admin   bool          // also Set and Forget
}

var linTable = newTable(1, "Linearizability: concurrent histories checked with porcupine against the per-entity model",
	"store", "lease", "clients", "keys", "calls", "unknown", "granted", "busy", "dropped", "lease lost", "result", "check")

// linConfigs are the histories recorded against every store: one whose
// leases outlive the run, so time plays no part in the model, and one whose
// leases expire while clients still hold them, so the model follows time.
func linConfigs() []linConfig {
	return []linConfig{
		{name: "1h", clients: 8, keys: 24, ops: scale(3000, 20000), lease: time.Hour, hold: 2 * time.Millisecond, tight: 0.03, admin: true},
		{name: "60ms", clients: 8, keys: 16, ops: scale(1500, 8000), lease: 60 * time.Millisecond, hold: 100 * time.Millisecond, tight: 0.03},
	}
}

func TestProofLinearizability(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			for _, cfg := range linConfigs() {
				t.Run("lease="+cfg.name, func(t *testing.T) {
					o := b.open(t, storeOpts{noRetry: true})
					checkLinearizable(t, b.name, o, cfg, true)
				})
			}
		})
	}
}

// checkLinearizable records a history of cfg against o's store and checks
// it. want says whether the store is expected to pass; the table gets a row
// only for stores expected to pass.
func checkLinearizable(t *testing.T, name string, o opened, cfg linConfig, want bool) porcupine.CheckResult {
	h := newHistory(unique("lin-"))
	w := &linWorkload{cfg: cfg, h: h, s: o.store, hints: make([]atomic.Int64, cfg.keys)}
	w.left.Store(int64(cfg.ops))
	var wg sync.WaitGroup
	for c := range cfg.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.client(c)
		}()
	}
	wg.Wait()

	model := leaseModel{slack: int64(o.slack)}.porcupineModel()
	start := time.Now()
	timeout := time.Duration(scale(60, 600)) * time.Second
	res, info := porcupine.CheckOperationsVerbose(model, h.ops, timeout)
	took := time.Since(start).Round(time.Millisecond)

	var unknown, granted, busy, dropped, lost int
	for _, op := range h.ops {
		out := op.Output.(output)
		switch {
		case out.unknown:
			unknown++
		case out.lost:
			lost++
		}
		switch out.verdict {
		case revguard.Granted:
			granted++
		case revguard.Busy:
			busy++
		case revguard.Dup, revguard.Old, revguard.Gap, revguard.TooFar:
			dropped++
		}
	}
	for why, n := range h.errors {
		t.Logf("%d calls of unknown outcome: %s", n, why)
	}
	if h.hidden > 0 && want {
		issueTable.add(t, "an expired context's error is not wrapped (contract: it is)", name, fmt.Sprintf("%d calls, e.g. %q", h.hidden, h.hiddenEx), 0)
		if *strictFlag {
			t.Errorf("%d calls whose context expired returned an error that does not wrap it, e.g. %s", h.hidden, h.hiddenEx)
		}
	}
	if want {
		linTable.add(t, name, cfg.name, cfg.clients, cfg.keys, len(h.ops), unknown, granted, busy, dropped, lost, res, took)
	}
	if res == porcupine.Illegal && want {
		where := ""
		if f, err := os.CreateTemp("", "revguard-proof-*.html"); err == nil {
			_ = porcupine.Visualize(model, info, f)
			_ = f.Close()
			where = ": see " + f.Name()
		}
		t.Errorf("%s: the history of %d calls is not linearizable%s", name, len(h.ops), where)
	}
	if res == porcupine.Unknown && want {
		t.Errorf("%s: porcupine could not decide in %s", name, timeout)
	}
	if want && granted == 0 {
		t.Errorf("%s: no call was granted: the history tests nothing", name)
	}
	return res
}

// linWorkload is clients using one store the way guards do, and then some:
// retried calls, commits and releases with tokens that are not theirs,
// calls cut off by their deadline.
type linWorkload struct {
	cfg    linConfig
	h      *history
	s      revguard.Store
	left   atomic.Int64
	tokens atomic.Int64
	hints  []atomic.Int64 // per key, near the highest revision granted

	mu   sync.Mutex
	used [][]int // per key, tokens used so far
}

func (w *linWorkload) call(c int, rng *rand.Rand, in input) output {
	w.left.Add(-1)
	in.lease = int64(w.cfg.lease)
	ctx := context.Background()
	if rng.Float64() < w.cfg.tight {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(rng.IntN(1500))*time.Microsecond)
		defer cancel()
	}
	return w.h.do(ctx, w.s, c, in)
}

func (w *linWorkload) newToken(k int) int {
	n := int(w.tokens.Add(1))
	w.mu.Lock()
	if w.used == nil {
		w.used = make([][]int, w.cfg.keys)
	}
	w.used[k] = append(w.used[k], n)
	w.mu.Unlock()
	return n
}

func (w *linWorkload) oldToken(k int, rng *rand.Rand) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.used == nil || len(w.used[k]) == 0 {
		return int(w.tokens.Add(1)) // a token no call has used: 0 is the model's "none"
	}
	u := w.used[k]
	return u[len(u)-1-rng.IntN(min(len(u), 4))]
}

// Keys differ in ordering and in where their revisions lie: some sit on
// 2^53, where doubles stop being exact, and some at the top of uint64.
func (w *linWorkload) sequential(k int) bool { return k%5 == 0 }

func (w *linWorkload) base(k int) uint64 {
	switch k % 6 {
	case 3:
		return 1<<53 - 4
	case 4:
		return math.MaxUint64 - 5000
	}
	return 0
}

// rev picks a revision near the key's highest granted one, so that
// revisions collide, go stale and move on.
func (w *linWorkload) rev(k int, rng *rand.Rand) revguard.Revision {
	d := w.hints[k].Load() + int64(rng.IntN(5)) - 2
	if w.sequential(k) {
		d = w.hints[k].Load() + int64(rng.IntN(4)) - 1
	}
	d = max(d, 0)
	b := w.base(k)
	if uint64(d) > math.MaxUint64-b {
		return math.MaxUint64
	}
	return revguard.Revision(b + uint64(d))
}

func (w *linWorkload) granted(k int, r revguard.Revision) {
	d := int64(uint64(r) - w.base(k))
	for {
		cur := w.hints[k].Load()
		if d <= cur || w.hints[k].CompareAndSwap(cur, d) {
			return
		}
	}
}

// batch claims (or advances) two to four distinct entities in one
// ClaimBatch, then commits what was granted in one CommitBatch, or releases
// it.
func (w *linWorkload) batch(c int, rng *rand.Rand) {
	kind := opClaim
	if rng.IntN(3) == 0 {
		kind = opAdvance
	}
	var ins []input
	for _, k := range rng.Perm(w.cfg.keys)[:2+rng.IntN(3)] {
		in := input{kind: kind, key: fmt.Sprintf("k%02d", k), rev: w.rev(k, rng), tok: w.newToken(k), lease: int64(w.cfg.lease)}
		if w.sequential(k) {
			in.seq, in.first = true, revguard.Revision(w.base(k)+1)
		}
		ins = append(ins, in)
	}
	w.left.Add(-int64(len(ins)))
	outs := w.h.doBatch(context.Background(), w.s, c, ins)
	var commits []input
	for i, out := range outs {
		k := 0
		_, _ = fmt.Sscanf(ins[i].key, "k%d", &k) // the keys are k0, k1, ..., made by this test
		switch {
		case out.verdict == revguard.Granted:
			w.granted(k, ins[i].rev)
			if kind == opClaim {
				commits = append(commits, input{kind: opCommit, key: ins[i].key, tok: ins[i].tok})
			}
		case out.unknown && kind == opClaim:
			w.call(c, rng, input{kind: opRelease, key: ins[i].key, tok: ins[i].tok})
		}
	}
	if len(commits) == 0 {
		return
	}
	if rng.IntN(5) == 0 { // the handlers failed
		for _, in := range commits {
			in.kind = opRelease
			w.call(c, rng, in)
		}
		return
	}
	w.left.Add(-int64(len(commits)))
	w.h.doCommitBatch(context.Background(), w.s, c, commits)
}

func (w *linWorkload) client(c int) {
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(c)))
	for w.left.Load() > 0 {
		k := rng.IntN(w.cfg.keys)
		key := fmt.Sprintf("k%02d", k)
		claim := input{key: key, rev: w.rev(k, rng)}
		if w.sequential(k) {
			claim.seq, claim.first = true, revguard.Revision(w.base(k)+1)
		} else if rng.IntN(10) == 0 {
			claim.maxStep = uint64(1 + rng.IntN(2))
		}
		switch x := rng.IntN(100); {
		case x < 10: // a batch, as HandleBatch makes it
			w.batch(c, rng)
		case x < 50: // a claim, as Claim mode makes it
			claim.kind, claim.tok = opClaim, w.newToken(k)
			out := w.call(c, rng, claim)
			if out.unknown && rng.IntN(2) == 0 {
				out = w.call(c, rng, claim) // the client's retry
			}
			if out.unknown || out.verdict != revguard.Granted {
				if out.unknown {
					w.call(c, rng, input{kind: opRelease, key: key, tok: claim.tok})
				}
				continue
			}
			w.granted(k, claim.rev)
			if rng.IntN(5) == 0 {
				w.call(c, rng, input{kind: opRenew, key: key, tok: claim.tok})
			}
			if rng.IntN(3) == 0 {
				time.Sleep(time.Duration(rng.Int64N(int64(w.cfg.hold) + 1)))
			}
			if rng.IntN(5) == 0 { // the handler failed
				w.call(c, rng, input{kind: opRelease, key: key, tok: claim.tok})
				continue
			}
			out = w.call(c, rng, input{kind: opCommit, key: key, tok: claim.tok})
			if out.unknown || rng.IntN(6) == 0 {
				w.call(c, rng, input{kind: opCommit, key: key, tok: claim.tok}) // retried
			}
			if rng.IntN(8) == 0 {
				w.call(c, rng, claim) // a claim retried after its commit
			}
		case x < 70: // an advance, as AtMostOnce makes it
			claim.kind, claim.tok = opAdvance, w.newToken(k)
			out := w.call(c, rng, claim)
			if out.unknown || rng.IntN(5) == 0 {
				out = w.call(c, rng, claim) // retried
			}
			if out.verdict == revguard.Granted {
				w.granted(k, claim.rev)
			}
		case x < 85:
			w.call(c, rng, input{kind: opPeek, key: key})
		case x < 97: // a call with someone else's, or an old, token
			kinds := []opKind{opCommit, opRelease, opRenew}
			w.call(c, rng, input{kind: kinds[rng.IntN(3)], key: key, tok: w.oldToken(k, rng)})
		default:
			if !w.cfg.admin {
				continue
			}
			if rng.IntN(2) == 0 {
				w.call(c, rng, input{kind: opSet, key: key, rev: w.rev(k, rng)})
			} else {
				w.call(c, rng, input{kind: opForget, key: key})
			}
		}
	}
}
