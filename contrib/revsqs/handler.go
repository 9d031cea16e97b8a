package revsqs

import (
	"context"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/revguard/revguard"
)

// Handler returns a Lambda handler for an SQS event source mapping with
// ReportBatchItemFailures turned on. It runs each message of the batch
// through g and h and answers with the messages that must come back, by
// MessageId; its error is always nil, since an error would make SQS
// redeliver the whole batch, applied messages included. The package
// comment says which messages it reports. It panics if g or h is nil.
func Handler(g *revguard.Guard[events.SQSMessage], h revguard.Handler[events.SQSMessage], opts ...Option) func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
	if g == nil {
		panic("revsqs.Handler: nil Guard")
	}
	if h == nil {
		panic("revsqs.Handler: nil handler")
	}
	c := newConfig(opts)
	return func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		var failed []events.SQSBatchItemFailure
		if isFIFO(ev.Records) {
			failed = c.inOrder(ctx, g, h, ev.Records)
		} else {
			failed = c.batch(ctx, g, h, ev.Records)
		}
		return events.SQSEventResponse{BatchItemFailures: failed}, nil
	}
}

// isFIFO reports whether the batch comes from a FIFO queue. One event
// source mapping reads one queue, so the first message tells.
func isFIFO(msgs []events.SQSMessage) bool {
	return len(msgs) > 0 && strings.HasSuffix(msgs[0].EventSourceARN, ".fifo")
}

// batch handles a standard queue's batch in one HandleBatch call: the
// queue promises no order, so the guard may sort and group it.
func (c *config) batch(ctx context.Context, g *revguard.Guard[events.SQSMessage], h revguard.Handler[events.SQSMessage], msgs []events.SQSMessage) []events.SQSBatchItemFailure {
	var failed []events.SQSBatchItemFailure
	for i, r := range g.HandleBatch(ctx, msgs, h) {
		if !c.acked(ctx, msgs[i], r.Err) {
			failed = append(failed, failure(msgs[i]))
		}
	}
	return failed
}

// acked maps the guard's answer for msg with revguard.Disposition: only Ack
// deletes a message, since SQS gives a Lambda function no other way to
// act on one than reporting it (see the package comment).
func (c *config) acked(ctx context.Context, msg events.SQSMessage, err error) bool {
	action, delay := revguard.Disposition(err)
	if action == revguard.RetryLater && c.retryLater != nil {
		c.retryLater(ctx, msg, delay)
	}
	return action == revguard.Ack
}

func failure(m events.SQSMessage) events.SQSBatchItemFailure {
	return events.SQSBatchItemFailure{ItemIdentifier: m.MessageId}
}
