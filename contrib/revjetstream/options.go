package revjetstream

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultAckWait is JetStream's default AckWait, what [WithAckWait] assumes
// when it is not given.
const DefaultAckWait = 30 * time.Second

// Option configures [Handler] and [Handle].
type Option func(*config)

type config struct {
	ctx        context.Context
	ackWait    time.Duration
	retryDelay time.Duration // 0: the delay revguard.Disposition suggests
	redeliver  time.Duration // 0: a plain Nak
	onError    func(jetstream.Msg, error)
}

func newConfig(opts []Option) config {
	c := config{ctx: context.Background(), ackWait: DefaultAckWait}
	for _, o := range opts {
		if o == nil {
			panic("revjetstream: nil Option")
		}
		o(&c)
	}
	return c
}

// WithAckWait tells [Handle] the consumer's AckWait (ConsumerConfig.AckWait,
// or the shortest BackOff step when BackOff is set): while the guard runs,
// the message is marked InProgress every third of d. A longer d than the
// consumer's lets JetStream deliver a slow handler's message to another
// consumer meanwhile; the guard refuses that delivery with ErrInFlight and
// it is tried again later, which is correct but wasteful. The signals start
// with the handler: a message that waited in Consume's buffer for most of
// its AckWait may still come back, so keep PullMaxMessages small for slow
// handlers. The default is [DefaultAckWait], 30s. It panics if d is below 3ms.
func WithAckWait(d time.Duration) Option {
	if d < 3*time.Millisecond {
		panic(fmt.Sprintf("revjetstream: WithAckWait(%s): want at least 3ms", d))
	}
	return func(c *config) { c.ackWait = d }
}

// WithRetryDelay sets the delay NakWithDelay asks for when another delivery
// of the entity is in flight or a Sequential revision arrived early. The
// default is the one [revguard.Disposition] suggests, [revguard.RetryDelay].
func WithRetryDelay(d time.Duration) Option {
	if d <= 0 {
		panic(fmt.Sprintf("revjetstream: WithRetryDelay(%s): want a positive duration", d))
	}
	return func(c *config) { c.retryDelay = d }
}

// WithRedeliverDelay makes a failure (a handler error, a lost lease, the
// store unreachable) NakWithDelay(d) instead of Nak. A plain Nak asks
// JetStream to deliver the message again at once, ignoring the consumer's
// BackOff, so while the store is down every consumer spins through its
// messages until MaxDeliver; a delay of a few hundred milliseconds spares
// the store and the server. The default is none: a plain Nak.
func WithRedeliverDelay(d time.Duration) Option {
	if d <= 0 {
		panic(fmt.Sprintf("revjetstream: WithRedeliverDelay(%s): want a positive duration", d))
	}
	return func(c *config) { c.redeliver = d }
}

// WithContext sets the context [Handler] runs the guard and the handler with:
// cancel it to stop handlers when the consumer stops (their messages are
// then delivered again). [Handle] takes its context as an argument instead.
// The default is context.Background().
func WithContext(ctx context.Context) Option {
	if ctx == nil {
		panic("revjetstream: WithContext(nil)")
	}
	return func(c *config) { c.ctx = ctx }
}

// WithErrorHandler makes [Handler] pass fn every error [Handle] would have
// returned, with its message: the guard's error (the message was then
// settled as [revguard.Disposition] says) and the error of the settling call
// itself (Ack, Nak, NakWithDelay or TermWithReason; the message then comes
// back after AckWait, and the guard drops it if it was applied). fn runs on
// the consumer's goroutine and must be quick. Handle ignores it. The default
// is none; the guard's own [revguard.WithLogger] and [revguard.WithObserver]
// still see its decisions.
func WithErrorHandler(fn func(msg jetstream.Msg, err error)) Option {
	if fn == nil {
		panic("revjetstream: WithErrorHandler(nil)")
	}
	return func(c *config) { c.onError = fn }
}
