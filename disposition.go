package revguard

import (
	"errors"
	"strconv"
	"time"
)

// An Action is what a transport should do with a message once the guard has
// answered for it. [Disposition] chooses it; the adapters under contrib/ map it
// onto each transport's acknowledgement.
type Action uint8

const (
	// Ack: acknowledge the message. It was applied, dropped as a duplicate or
	// stale, or taken by WithDeadLetter.
	Ack Action = iota + 1
	// RetryLater: deliver the message again after a delay (the transport's
	// delayed negative acknowledgement where it has one). Another delivery of
	// the entity is in flight, or earlier revisions must be applied first.
	RetryLater
	// DeadLetter: no delivery will ever succeed (bad input, or a Permanent
	// handler error that no WithDeadLetter took). Use the transport's
	// terminate or dead-letter path; nothing was recorded.
	DeadLetter
	// Redeliver: deliver the message again, with the transport's own backoff.
	// The handler failed, the lease was lost, or the store could not be reached.
	Redeliver
)

// String returns the action in lower case ("retry-later"), the form logs
// and metric labels use.
func (a Action) String() string {
	switch a {
	case Ack:
		return "ack"
	case RetryLater:
		return "retry-later"
	case DeadLetter:
		return "dead-letter"
	case Redeliver:
		return "redeliver"
	}
	return "Action(" + strconv.Itoa(int(a)) + ")"
}

// RetryDelay is the delay [Disposition] suggests with [RetryLater]. A claim in
// force is usually released or committed within a handler's run, and the
// revision a gap waits for is usually the next message of the same stream,
// so a short delay costs little; a transport that redelivers at once would
// instead spin on the entity.
const RetryDelay = time.Second

// Disposition maps an error from [Guard.Handle], [Guard.Wrap]'s handler or a
// [Guard.HandleBatch] [Result] onto what the transport should do with the
// message, so that every consumer follows one rule:
//
//   - nil: [Ack];
//   - [ErrInFlight] or [ErrGap]: [RetryLater], with [RetryDelay] as the delay;
//   - [ErrInvalidKey], [ErrInvalidRevision], [ErrInvalidEvent], or a
//     [Permanent] error: [DeadLetter] (the guard recorded nothing, so the
//     event may be replayed once repaired);
//   - anything else ([ErrLeaseLost], a handler error, a store error, a
//     cancelled context): [Redeliver], with a zero delay.
func Disposition(err error) (Action, time.Duration) {
	switch {
	case err == nil:
		return Ack, 0
	case errors.Is(err, ErrInFlight), errors.Is(err, ErrGap):
		return RetryLater, RetryDelay
	case isBadInput(err), IsPermanent(err):
		return DeadLetter, 0
	}
	return Redeliver, 0
}
