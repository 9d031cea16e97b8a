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
// out.
type lease struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	store  Store
	every  time.Duration
	length time.Duration
	claims []Commit

	mu       sync.Mutex
	timer    *time.Timer
	deadline time.Time
	lost     error
	stopped  bool
}

func startLease(parent context.Context, s Store, length time.Duration, claims ...Commit) *lease {
	ctx, cancel := context.WithCancelCause(parent)
	l := &lease{ctx: ctx, cancel: cancel, store: s, every: length / 3, length: length, claims: claims,
		deadline: time.Now().Add(length)}
	l.mu.Lock()
	l.timer = time.AfterFunc(l.every, l.renew)
	l.mu.Unlock()
	return l
}

func (l *lease) renew() {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()

	started := time.Now()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(l.ctx), l.every)
	var err error
	for _, c := range l.claims {
		if err = l.store.Renew(ctx, c.Namespace, c.Key, c.Token, l.length); err != nil {
			err = fmt.Errorf("renewing %s: %w", quote(c.Key), err)
			break
		}
	}
	cancel()

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return
	}
	switch {
	case err == nil:
		l.deadline = started.Add(l.length)
		l.timer.Reset(l.every)
	case errors.Is(err, ErrLeaseLost) || time.Now().Add(l.every/4).After(l.deadline):
		l.lost = fmt.Errorf("%w: %w", ErrLeaseLost, err)
		l.cancel(l.lost)
	default:
		// The store did not answer; the claim still holds until the
		// deadline, so try again soon.
		l.timer.Reset(l.every / 4)
	}
}

// stop ends renewal and reports whether the claims were lost meanwhile.
func (l *lease) stop() error {
	l.mu.Lock()
	l.stopped = true
	l.timer.Stop()
	lost := l.lost
	if lost == nil && time.Now().After(l.deadline) {
		lost = fmt.Errorf("%w: the handler outlived the lease and its renewals failed", ErrLeaseLost)
	}
	l.mu.Unlock()
	l.cancel(context.Canceled)
	return lost
}
