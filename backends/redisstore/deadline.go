package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// A consumer bounds a stuck store with its context, but go-redis does not
// end a call when its context does. Without ContextTimeoutEnabled it writes
// and reads with context.Background(), bounded only by ReadTimeout (5s by
// default) and then a retry; with it, a context's deadline becomes the
// socket's, but a cancellation still waits for the read. Only waiting for a
// pooled connection and the pause between retries watch the context.
//
// So the store calls go-redis directly only when that bounds the call as
// the context does: the context cannot end (context.Background), or the
// client has ContextTimeoutEnabled and the context has a deadline (a
// cancellation before the deadline then ends the call at the deadline or
// after ReadTimeout, whichever is sooner: go-redis's own behaviour). Any
// other call runs on a goroutine of its own, and the store returns as soon
// as the context ends. That costs a goroutine and, above all, a second
// wake-up per call: with a server on the same machine, about a third of a
// single consumer's Handle (BenchmarkDeadline); with many consumers, or a
// network between client and server, little.
//
// The abandoned call goes on until go-redis gives up (after ReadTimeout:
// its retry pauses on the ended context and stops), holding its connection
// meanwhile, and its result is dropped. That is safe because an error from
// the store already means "the call may or may not have taken effect" and
// every script answers a second run as it did the first: the caller
// retries.

// direct reports whether a call under ctx may go to go-redis as it is,
// which bounds it as ctx does.
func (s *Store) direct(ctx context.Context) bool {
	if ctx.Done() == nil {
		return true
	}
	if s.clientDeadlines {
		_, ok := ctx.Deadline()
		return ok
	}
	return false
}

// outcome is what a call returned.
type outcome[T any] struct {
	v   T
	err error
}

// bounded returns what call returns, or ctx.Err() as soon as ctx ends,
// whichever comes first, leaving call to finish on its goroutine. Callers
// ask s.direct first, and turn ctx.Err() into endedError's error. call must
// not write what the caller reads after an early return, nor read what the
// caller changes after it.
func bounded[T any](ctx context.Context, call func() (T, error)) (T, error) {
	done := make(chan outcome[T], 1)
	go func() {
		v, err := call()
		done <- outcome[T]{v, err}
	}()
	select {
	case o := <-done:
		return o.v, o.err
	case <-ctx.Done():
		// A reply that came with the end is still the call's answer.
		select {
		case o := <-done:
			return o.v, o.err
		default:
		}
		var zero T
		return zero, ctx.Err()
	}
}

// within is bounded for calls off the hot path, which need not spare the
// closure: it calls call directly when s.direct(ctx).
func within[T any](s *Store, ctx context.Context, call func() (T, error)) (T, error) {
	if s.direct(ctx) {
		return call()
	}
	return bounded(ctx, call)
}

// endedError returns the error of a call that failed with err, what go-redis
// or bounded returned, once ctx has ended: one that wraps ctx.Err(), so that
// errors.Is finds context.DeadlineExceeded or context.Canceled, and the
// context's cause when it has another (go-redis returns an i/o timeout at a
// deadline, or nothing at all of a cancellation). It returns nil for an
// error that is the server's answer, which stands, and while ctx lives.
func endedError(ctx context.Context, what string, err error) error {
	var reply redis.Error
	if errors.As(err, &reply) {
		return nil
	}
	end := ctx.Err()
	if end == nil {
		// go-redis's socket deadline is the context's: its i/o timeout may
		// come a moment before the context's own timer.
		d, ok := ctx.Deadline()
		if !ok || time.Now().Before(d) {
			return nil
		}
		end = context.DeadlineExceeded
	}
	if errors.Is(err, end) {
		err = nil // the end itself, as bounded or the pool returned it
	}
	cause := context.Cause(ctx)
	if cause == nil || cause == end { //nolint:errorlint // identity: no cause but the end itself; one that wraps the end says more
		cause = nil
	}
	msg := "redisstore: %s: %w; the call was abandoned and may still take effect"
	switch {
	case err != nil && cause != nil:
		return fmt.Errorf(msg+" (%w; %w)", what, end, cause, err)
	case err != nil:
		return fmt.Errorf(msg+" (%w)", what, end, err)
	case cause != nil:
		return fmt.Errorf(msg+" (%w)", what, end, cause)
	}
	return fmt.Errorf(msg, what, end)
}
