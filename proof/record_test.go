package proof

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/revguard/revguard"
)

// errDead is what a dead consumer's store calls answer: its process is
// gone, so nothing it would send reaches the store.
var errDead = errors.New("proof: this consumer is dead")

// A decision is one Claim (or Transact) a guard made, as the guard saw it.
type decision struct {
	consumer   int
	key        string
	rev        revguard.Revision
	advance    bool
	start, end time.Time
	verdict    revguard.Verdict // 0 when err is set
	err        error
}

// callLog collects the decisions of every consumer of one storm, and the
// outcome of every other store call for the outage checks.
type callLog struct {
	mu        sync.Mutex
	decisions []decision
	calls     []call

	// Batch calls (ClaimBatch, CommitBatch) carrying more than one request,
	// and the requests they carried: under concurrent Handle calls, the
	// calls the guard coalesced.
	multiClaims, multiClaimReqs   atomic.Int64
	multiCommits, multiCommitReqs atomic.Int64
}

// call is any store call: when it ran and whether it failed.
type call struct {
	op         string
	start, end time.Time
	err        error
}

func (l *callLog) decided(d decision) {
	l.mu.Lock()
	l.decisions = append(l.decisions, d)
	l.mu.Unlock()
}

func (l *callLog) called(op string, start time.Time, err error) {
	end := time.Now()
	l.mu.Lock()
	l.calls = append(l.calls, call{op, start, end, err})
	l.mu.Unlock()
}

// recStore is the store as one consumer process reaches it: every call is
// recorded and bounded by a timeout, and once the consumer is killed every
// call fails as if the process were gone.
type recStore struct {
	inner    revguard.Store
	log      *callLog
	consumer int
	timeout  time.Duration
	latency  time.Duration // added to every call, as a network would
	dead     atomic.Bool
}

var _ revguard.Store = (*recStore)(nil)

// recTxStore is a recStore whose store has transactions.
type recTxStore struct {
	*recStore
	tx      revguard.Transactor
	handler time.Duration // the longest a handler may hold its transaction
}

var _ revguard.Transactor = (*recTxStore)(nil)

func (r *recStore) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	if r.latency > 0 {
		time.Sleep(r.latency)
	}
	return context.WithTimeout(ctx, r.timeout)
}

func (r *recStore) Claim(ctx context.Context, req revguard.Request) (revguard.Reply, error) {
	start := time.Now()
	if r.dead.Load() {
		return revguard.Reply{}, errDead
	}
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	res, err := r.inner.Claim(ctx, req)
	d := decision{consumer: r.consumer, key: req.Key, rev: req.Rev, advance: req.Advance, start: start, end: time.Now(), err: err}
	if err == nil {
		d.verdict = res.Verdict
	}
	r.log.decided(d)
	r.log.called("claim", start, err)
	return res, err
}

// ClaimBatch sends the batch to the store's own ClaimBatch, so that a
// storm exercises the multi-key path (one script per Redis node, one SQL
// statement) that coalesced and batched calls take. Every request is logged
// as a decision spanning the whole call.
func (r *recStore) ClaimBatch(ctx context.Context, reqs []revguard.Request) ([]revguard.Reply, error) {
	start := time.Now()
	if r.dead.Load() {
		return nil, errDead
	}
	if len(reqs) > 1 {
		r.log.multiClaims.Add(1)
		r.log.multiClaimReqs.Add(int64(len(reqs)))
	}
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	res, err := r.inner.ClaimBatch(ctx, reqs)
	end := time.Now()
	if err == nil && len(res) != len(reqs) {
		err = fmt.Errorf("proof: ClaimBatch answered %d replies for %d requests", len(res), len(reqs))
	}
	for i, req := range reqs {
		d := decision{consumer: r.consumer, key: req.Key, rev: req.Rev, advance: req.Advance, start: start, end: end, err: err}
		if err == nil {
			d.verdict = res[i].Verdict
		}
		r.log.decided(d)
	}
	r.log.called("claim", start, err)
	return res, err
}

func (r *recStore) Renew(ctx context.Context, ns, key string, token revguard.Token, lease time.Duration) error {
	start := time.Now()
	if r.dead.Load() {
		return errDead
	}
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	err := r.inner.Renew(ctx, ns, key, token, lease)
	r.log.called("renew", start, err)
	return err
}

func (r *recStore) Commit(ctx context.Context, ns, key string, token revguard.Token) error {
	start := time.Now()
	if r.dead.Load() {
		return errDead
	}
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	err := r.inner.Commit(ctx, ns, key, token)
	r.log.called("commit", start, err)
	return err
}

func (r *recStore) CommitBatch(ctx context.Context, commits []revguard.Commit) ([]error, error) {
	start := time.Now()
	if r.dead.Load() {
		return nil, errDead
	}
	if len(commits) > 1 {
		r.log.multiCommits.Add(1)
		r.log.multiCommitReqs.Add(int64(len(commits)))
	}
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	errs, err := r.inner.CommitBatch(ctx, commits)
	if err == nil && len(errs) != len(commits) {
		err = fmt.Errorf("proof: CommitBatch answered %d errors for %d commits", len(errs), len(commits))
	}
	r.log.called("commit", start, err)
	return errs, err
}

func (r *recStore) Release(ctx context.Context, ns, key string, token revguard.Token) error {
	start := time.Now()
	if r.dead.Load() {
		return errDead
	}
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	err := r.inner.Release(ctx, ns, key, token)
	r.log.called("release", start, err)
	return err
}

func (r *recStore) Peek(ctx context.Context, ns, key string) (revguard.State, error) {
	if r.dead.Load() {
		return revguard.State{}, errDead
	}
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	return r.inner.Peek(ctx, ns, key)
}

func (r *recStore) Set(ctx context.Context, ns, key string, rev revguard.Revision) error {
	if r.dead.Load() {
		return errDead
	}
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	return r.inner.Set(ctx, ns, key, rev)
}

func (r *recStore) Forget(ctx context.Context, ns, key string) error {
	if r.dead.Load() {
		return errDead
	}
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	return r.inner.Forget(ctx, ns, key)
}

func (r *recTxStore) Transact(ctx context.Context, req revguard.Request, fn func(context.Context) error) (revguard.Reply, error) {
	start := time.Now()
	if r.dead.Load() {
		return revguard.Reply{}, errDead
	}
	// The bound covers the handler too: a transaction whose consumer died
	// is rolled back when it runs out, as a database rolls back the
	// transaction of a connection that went away.
	ctx, cancel := context.WithTimeout(ctx, r.timeout+r.handler)
	defer cancel()
	res, err := r.tx.Transact(ctx, req, fn)
	d := decision{consumer: r.consumer, key: req.Key, rev: req.Rev, advance: true, start: start, end: time.Now(), err: err}
	if err == nil || res.Verdict != 0 {
		d.verdict = res.Verdict
	}
	r.log.decided(d)
	r.log.called("transact", start, err)
	return res, err
}
