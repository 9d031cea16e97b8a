package revwatermill

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/revguard/revguard"
)

// Middleware returns a router middleware that runs each message's handler
// through g: the handler runs only if the message's revision is newer than
// its entity's applied one. A duplicate or stale message is acknowledged
// with no produced messages; any error of the guard or the handler is
// returned, so that the router nacks the message (see the package
// documentation for what each means). It panics if g is nil.
func Middleware(g *revguard.Guard[*message.Message]) message.HandlerMiddleware {
	if g == nil {
		panic("revwatermill: Middleware(nil)")
	}
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			// produced holds what the handler's last run produced, if it
			// succeeded: a failed run's messages (one WithDeadLetter took)
			// are not published, and a Transactional conflict runs the
			// handler again. The handler runs in this goroutine, within
			// Handle. Produced messages follow the handler's run, not the
			// outcome: under WithShadow a handler runs for a duplicate too.
			var produced []*message.Message
			_, err := g.Handle(msg.Context(), msg, func(ctx context.Context, msg *message.Message) error {
				outer := msg.Context()
				msg.SetContext(ctx)
				// A retry middleware outside calls again with this message:
				// it must not find the guard's context, cancelled by then.
				defer msg.SetContext(outer)
				msgs, err := h(msg)
				produced = nil
				if err == nil {
					produced = msgs
				}
				return err
			})
			// Not Ack: nothing the handler produced may leave, since the
			// revision it ran for was not recorded.
			if action, _ := revguard.Disposition(err); action != revguard.Ack {
				return nil, err
			}
			return produced, nil
		}
	}
}

// IsDeadLetter reports whether err, as [Middleware] returns it, means that
// no delivery of the message will ever succeed ([revguard.Disposition] answers
// DeadLetter): bad input or a [revguard.Permanent] handler error. It is the
// filter for middleware.PoisonQueueWithFilter.
func IsDeadLetter(err error) bool {
	action, _ := revguard.Disposition(err)
	return action == revguard.DeadLetter
}

// ShouldRetry is a middleware.Retry ShouldRetry function that retries every
// error but those [IsDeadLetter] reports, which no retry can cure.
func ShouldRetry(p middleware.RetryParams) bool { return !IsDeadLetter(p.Err) }
