package revsqs

import (
	"context"

	"github.com/aws/aws-lambda-go/events"
	"github.com/revguard/revguard"
)

// inOrder handles a FIFO queue's batch one message at a time. A failure
// blocks its group: the group of every message unless SkipGroupOnError,
// its MessageGroupId with it. A blocked group's later messages are reported
// without reaching the handler, so that none is applied before the one
// that failed.
func (c *config) inOrder(ctx context.Context, g *revguard.Guard[events.SQSMessage], h revguard.Handler[events.SQSMessage], msgs []events.SQSMessage) []events.SQSBatchItemFailure {
	var failed []events.SQSBatchItemFailure
	blocked := make(map[string]bool)
	for _, m := range msgs {
		var group string
		if c.skipGroup {
			group = m.Attributes["MessageGroupId"]
		}
		if !blocked[group] {
			_, err := g.Handle(ctx, m, h)
			if c.acked(ctx, m, err) {
				continue
			}
			blocked[group] = true
		}
		failed = append(failed, failure(m))
	}
	return failed
}
