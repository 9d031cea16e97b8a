package revjetstream

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/revguard/revguard"
)

// Handler returns a handler for Consume that runs each message through g
// with h and settles it as [Handle] does. It hands errors to
// [WithErrorHandler]'s function. It panics if g or h is nil.
func Handler(g *revguard.Guard[jetstream.Msg], h revguard.Handler[jetstream.Msg], opts ...Option) jetstream.MessageHandler {
	mustHave("Handler", g, h)
	c := newConfig(opts)
	return func(msg jetstream.Msg) {
		if err := c.handle(c.ctx, g, msg, h); err != nil && c.onError != nil {
			c.onError(msg, err)
		}
	}
}

// Handle runs msg through g with h and then acknowledges, delays, terminates
// or negatively acknowledges it as [revguard.Disposition] says (see the
// package documentation), for loops over Messages or Fetch. While the guard
// runs, msg is marked InProgress every third of the consumer's AckWait (see
// [WithAckWait]). h must not acknowledge msg itself.
//
// It returns nil when msg was acknowledged; otherwise the guard's error, the
// error of the call that settled msg, or both joined. Either way msg has
// been settled, or will come back after AckWait: there is nothing left to
// do with it but to log the error. It panics if g or h is nil.
func Handle(ctx context.Context, g *revguard.Guard[jetstream.Msg], msg jetstream.Msg, h revguard.Handler[jetstream.Msg], opts ...Option) error {
	mustHave("Handle", g, h)
	c := newConfig(opts)
	return c.handle(ctx, g, msg, h)
}

func (c *config) handle(ctx context.Context, g *revguard.Guard[jetstream.Msg], msg jetstream.Msg, h revguard.Handler[jetstream.Msg]) error {
	return c.settle(msg, c.run(ctx, g, msg, h))
}

// run runs msg through the guard, marking it InProgress meanwhile.
func (c *config) run(ctx context.Context, g *revguard.Guard[jetstream.Msg], msg jetstream.Msg, h revguard.Handler[jetstream.Msg]) error {
	p := keepInProgress(msg, c.ackWait/3)
	defer p.stop() // also when h panics
	_, err := g.Handle(ctx, msg, h)
	return err
}

// mustHave panics, naming fn, if g or h is nil: programming errors, which
// would otherwise have every message nakked forever.
func mustHave(fn string, g *revguard.Guard[jetstream.Msg], h revguard.Handler[jetstream.Msg]) {
	if g == nil {
		panic("revjetstream: " + fn + ": nil Guard")
	}
	if h == nil {
		panic("revjetstream: " + fn + ": nil revguard.Handler")
	}
}
