package revguard

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Permanent marks a handler error as one that no redelivery will cure (a
// malformed payload, a rule the event breaks). With [WithDeadLetter], the guard
// hands the event to the dead-letter callback and records its revision, so
// the transport stops redelivering it; without it, a Permanent error is an
// ordinary one. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

type permanentError struct{ err error }

func (p *permanentError) Error() string { return "permanent: " + p.err.Error() }
func (p *permanentError) Unwrap() error { return p.err }

// IsPermanent reports whether err, or an error it wraps, came from [Permanent].
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// WithDeadLetter sets the callback that receives events whose handler
// returned a [Permanent] error. When it returns nil the event's revision is
// recorded and [Guard.Handle] returns [DeadLettered] with a nil error, so the
// message is acknowledged; when it fails, nothing is recorded and Handle
// returns its error. Count attempts with what the transport offers (SQS's
// receive count, a Kafka header) and return Permanent past a limit to bound
// retries. In [Transactional] mode fn runs inside the handler's transaction
// (TxFrom works), so a dead-letter row and the revision commit together. The
// default is none. [New] panics if T is not the guard's event type.
func WithDeadLetter[T any](fn func(ctx context.Context, event T, err error) error) Option {
	if fn == nil {
		panic("revguard: WithDeadLetter(nil)")
	}
	return func(c *config) { c.deadLetter = fn }
}

// timedCall is call, timed when the guard watches.
func (g *Guard[T]) timedCall(ctx context.Context, h Handler[T], event T) (dead bool, took time.Duration, err error) {
	if !g.watch {
		dead, err = g.call(ctx, h, event)
		return dead, 0, err
	}
	start := time.Now()
	dead, err = g.call(ctx, h, event)
	return dead, time.Since(start), err
}

// call runs h and turns a Permanent error into a dead letter.
func (g *Guard[T]) call(ctx context.Context, h Handler[T], event T) (deadLettered bool, err error) {
	err = h(ctx, event)
	if err == nil || g.deadLetter == nil || g.cfg.shadow || !IsPermanent(err) {
		return false, err
	}
	if dlErr := g.deadLetter(ctx, event, err); dlErr != nil {
		//nolint:errorlint // %v: wrapping err too would make this IsPermanent, and a caller drop an event whose dead letter failed
		return false, fmt.Errorf("revguard: dead-letter callback failed: %w (the handler failed with: %v)", dlErr, err)
	}
	return true, nil
}
