package revsqs

import (
	"context"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// Option configures [Handler].
type Option func(*config)

type config struct {
	skipGroup  bool
	retryLater func(ctx context.Context, msg events.SQSMessage, delay time.Duration)
}

func newConfig(opts []Option) config {
	var c config
	for _, o := range opts {
		if o == nil {
			panic("revsqs.Handler: nil Option")
		}
		o(&c)
	}
	return c
}

// SkipGroupOnError changes what a failure does on a FIFO queue: instead of
// stopping the batch, it reports the failing message and the later messages
// of its message group (the MessageGroupId attribute) only, and goes on with
// the other groups, whose order the failure does not concern. It has no
// effect on a standard queue. The default is to stop the batch at the first
// failure.
func SkipGroupOnError() Option {
	return func(c *config) { c.skipGroup = true }
}

// WithRetryLater sets a function called for every message that should come
// back after a delay ([revguard.ErrInFlight], [revguard.ErrGap]), with the
// delay [revguard.Disposition] suggests. The message is reported as failed
// either way and returns when its visibility timeout ends; fn may shorten
// that with ChangeMessageVisibility (msg.ReceiptHandle, a whole number of
// seconds), and should log its own errors, which cannot change the message's
// fate. The default is none: the queue's visibility timeout is the delay.
func WithRetryLater(fn func(ctx context.Context, msg events.SQSMessage, delay time.Duration)) Option {
	if fn == nil {
		panic("revsqs.WithRetryLater(nil)")
	}
	return func(c *config) { c.retryLater = fn }
}
