package revguard

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"
)

// runClaimed runs the granted jobs' handlers while their claims are held,
// then commits the claims whose handler succeeded, in one store call shared
// with concurrent callers, and releases the others. A claim known to be
// lost is never committed: its job fails with ErrLeaseLost, as the
// handler's cancelled context already said.
func (g *Guard[T]) runClaimed(ctx context.Context, jobs []job[T], h Handler[T], epoch uint64) {
	hctx, l, held := g.hold(ctx, jobs)
	ran := false
	defer func() {
		if !ran { // a handler panicked: free every claim, let the panic go on
			if held != nil {
				l = held.close()
			}
			_ = g.keeper.stop(l) // whether claims were lost matters to a commit, and none follows a panic
			for i := range jobs {
				if !jobs[i].done {
					g.release(context.WithoutCancel(ctx), &jobs[i])
				}
			}
		}
	}()
	g.run(hctx, jobs, h)
	ran = true
	if held != nil {
		l = held.close()
	}
	// A consumer shutting down still records what its handlers finished.
	if ctx.Err() != nil {
		ctx = context.WithoutCancel(ctx)
	}
	lostBefore := l.isLost()
	if !lostBefore {
		g.commit(ctx, l, jobs)
	}
	lost := g.keeper.stop(l)
	for i := range jobs {
		j := &jobs[i]
		if j.done {
			continue
		}
		if lostBefore {
			j.err = lost // whatever the handler returned, its context said so
		}
		if j.err == nil {
			g.learn(j.req.Key, j.state, j.req.Rev, true, epoch)
			j.finish(j.out, nil)
			continue
		}
		g.release(ctx, j)
		j.finish(0, j.err)
	}
}

// hold starts the lease that keeps the granted jobs' claims alive and
// returns the handlers' context. On an InProcess store, whose claims need no
// renewal, it returns a heldCtx instead, which starts a lease only for a
// handler that watches its context.
func (g *Guard[T]) hold(ctx context.Context, jobs []job[T]) (context.Context, *lease, *heldCtx) {
	var one [1]Commit
	claims := one[:0]
	if len(jobs) > 1 {
		claims = make([]Commit, 0, len(jobs))
	}
	for i := range jobs {
		if !jobs[i].done {
			claims = append(claims, jobs[i].claim())
		}
	}
	if g.held {
		c := g.keeper.held(ctx, claims)
		return c, nil, c
	}
	l := g.keeper.start(ctx, claims...)
	return l.ctx, l, nil
}

func (j *job[T]) claim() Commit {
	return Commit{Namespace: j.req.Namespace, Key: j.req.Key, Token: j.req.Token}
}

func (g *Guard[T]) release(ctx context.Context, j *job[T]) {
	start := g.storeStart()
	err := g.store.Release(ctx, j.req.Namespace, j.req.Key, j.req.Token)
	g.storeCall(ctx, "release", 1, start, err)
}

// commit commits the claims of the jobs whose handler succeeded and sets
// the error of each that fails. The keeper goes on renewing while a commit
// is retried; a claim lost meanwhile is refused by the store, which fences
// by token.
func (g *Guard[T]) commit(ctx context.Context, l *lease, jobs []job[T]) {
	n := 0
	var last *job[T]
	for i := range jobs {
		if j := &jobs[i]; !j.done && j.err == nil {
			n, last = n+1, j
		}
	}
	switch n {
	case 0:
		return
	case 1: // Handle's one commit: nothing of it leaves the stack
		c := last.claim()
		var answer error
		start := g.storeStart()
		err := g.settle(ctx, l, func() (err error) {
			if last.reply != nil { // HandleReply's: a call of its own, never shared
				return g.kept.CommitPayload(ctx, c.Namespace, c.Key, c.Token, last.reply)
			}
			answer, err = g.commits.call(ctx, c)
			return err
		})
		err = cmp.Or(err, answer)
		g.storeCall(ctx, "commit", 1, start, err)
		if err != nil {
			g.commitFailed(l, last, err)
		}
		return
	}
	commits := make([]Commit, 0, n)
	for i := range jobs {
		if j := &jobs[i]; !j.done && j.err == nil {
			commits = append(commits, j.claim())
		}
	}
	errs := make([]error, n)
	start := g.storeStart()
	err := g.settle(ctx, l, func() error { return g.commits.batch(ctx, commits, errs) })
	g.storeCall(ctx, "commit", n, start, err)
	k := 0
	for i := range jobs {
		if j := &jobs[i]; !j.done && j.err == nil {
			if e := cmp.Or(err, errs[k]); e != nil {
				g.commitFailed(l, j, e)
			}
			k++
		}
	}
}

func (g *Guard[T]) commitFailed(l *lease, j *job[T], err error) {
	if lost := l.lostErr(); lost != nil && !errors.Is(err, ErrLeaseLost) {
		err = fmt.Errorf("%w (%w)", lost, err)
	}
	j.err = storeError("commit", j.req.Key, j.req.Rev, err)
}

// settle runs commit, and again while the store cannot be reached and the
// lease still holds: the handlers' work is done, and giving up early would
// make the redelivery run them again. Every store call is safe to retry (a
// retried commit answers nil). The keeper must go on renewing l meanwhile.
func (g *Guard[T]) settle(ctx context.Context, l *lease, commit func() error) error {
	err := commit()
	if err == nil {
		return nil // the clock is read only on the way to a retry: a tenth of the memstore path
	}
	deadline := time.Now().Add(g.cfg.lease)
	wait := 10 * time.Millisecond
	for {
		if errors.Is(err, ErrLeaseLost) || l.isLost() || ctx.Err() != nil || time.Now().Add(wait).After(deadline) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
		wait = min(2*wait, time.Second)
		if err = commit(); err == nil {
			return nil
		}
	}
}
