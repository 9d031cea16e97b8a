package revguard

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// lease keeps claims alive while a handler runs: it renews them every third
// of the lease and cancels the handler's context once they are lost, either
// because the store said so or because renewals failed until the lease ran
// out. Leases are pooled with their timer: a handler that finishes before
// the first renewal, the common case, then costs no allocation here.
type lease struct {
	mu      sync.Mutex
	timer   *time.Timer
	gen     uint64 // which use of this pooled lease the timer belongs to
	active  bool
	ctx     context.Context
	cancel  context.CancelCauseFunc
	store   Store
	every   time.Duration
	length  time.Duration
	claims  []Commit
	one     [1]Commit
	expires time.Time // zero until the first renewal attempt
	lost    error
}

var leases = sync.Pool{New: func() any {
	l := &lease{}
	l.timer = time.AfterFunc(time.Hour, l.renew)
	l.timer.Stop()
	return l
}}

func startLease(parent context.Context, s Store, length time.Duration, claims ...Commit) *lease {
	l := leases.Get().(*lease)
	ctx, cancel := context.WithCancelCause(parent)
	l.mu.Lock()
	l.gen++
	l.active, l.ctx, l.cancel, l.store = true, ctx, cancel, s
	l.every, l.length, l.expires, l.lost = length/3, length, time.Time{}, nil
	if len(claims) == 1 {
		l.one[0] = claims[0]
		l.claims = l.one[:]
	} else {
		l.claims = append([]Commit(nil), claims...)
	}
	l.timer.Reset(l.every)
	l.mu.Unlock()
	return l
}

func (l *lease) renew() {
	l.mu.Lock()
	if !l.active {
		l.mu.Unlock()
		return
	}
	gen, ctx, s, claims, every, length := l.gen, l.ctx, l.store, l.claims, l.every, l.length
	started := time.Now()
	if l.expires.IsZero() {
		// The timer fires a third of a lease after the claim was made.
		l.expires = started.Add(length - every)
	}
	l.mu.Unlock()

	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), every)
	var err error
	for _, c := range claims {
		if err = s.Renew(rctx, c.Namespace, c.Key, c.Token, length); err != nil {
			err = fmt.Errorf("renewing %s: %w", quote(c.Key), err)
			break
		}
	}
	cancel()

	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.active || l.gen != gen {
		return
	}
	switch {
	case err == nil:
		l.expires = started.Add(length)
		l.timer.Reset(every)
	case errors.Is(err, ErrLeaseLost) || time.Now().Add(every/4).After(l.expires):
		l.lost = fmt.Errorf("%w: %w", ErrLeaseLost, err)
		l.cancel(l.lost)
	default:
		// The store did not answer; the claim holds until it expires, so
		// try again soon.
		l.timer.Reset(every / 4)
	}
}

// stop ends renewal, reports whether the claims were lost meanwhile, and
// returns the lease to the pool. The commit that follows is fenced by the
// token in the store, so a lease that ran out without the timer noticing
// is still caught there.
func (l *lease) stop() error {
	l.mu.Lock()
	l.active = false
	l.timer.Stop()
	lost, cancel := l.lost, l.cancel
	l.ctx, l.cancel, l.store, l.claims, l.one[0] = nil, nil, nil, nil, Commit{}
	l.mu.Unlock()
	cancel(context.Canceled)
	leases.Put(l)
	return lost
}
