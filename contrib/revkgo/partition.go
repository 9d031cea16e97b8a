package revkgo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/revguard/revguard"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrPartitionStopped: a record could never succeed (bad input, a Permanent
// handler error) and no [WithDeadLetter] took it, so its partition was
// rewound to it and paused. The error wrapping it names the record and
// wraps the guard's error too.
var ErrPartitionStopped = errors.New("revkgo: partition stopped")

// A verdict is what one poll's records of one partition left to do.
type verdict struct {
	first  *kgo.Record   // the first record of the poll
	acked  *kgo.Record   // the last record acknowledged; nil if none was
	rewind *kgo.Record   // the first record not acknowledged; nil if all were
	delay  time.Duration // how long the partition waits before rewind is fetched again
	stop   error         // wraps ErrPartitionStopped: the partition waits for ever
}

// partition runs one partition's records through the guard, in order, up to
// the first one not acknowledged: nothing after it may be handled before it.
func (c *config) partition(ctx context.Context, g *revguard.Guard[*kgo.Record], h revguard.Handler[*kgo.Record], recs []*kgo.Record) verdict {
	v := verdict{first: recs[0]}
	for _, r := range recs {
		out, err := g.Handle(ctx, r, h)
		action, delay := revguard.Disposition(err)
		if action == revguard.DeadLetter && c.deadLetter != nil {
			// Taken, the record is done with; refused, it comes again.
			if err = c.sendDeadLetter(ctx, r, err); err == nil {
				out, action = revguard.DeadLettered, revguard.Ack
			} else {
				action = revguard.Redeliver
			}
		}
		if c.observe != nil {
			c.observe(r, out, err)
		}
		switch action {
		case revguard.Ack:
			v.acked = r
			continue
		case revguard.RetryLater:
			if c.retrySet {
				delay = c.retryDelay
			}
		case revguard.Redeliver:
			delay = c.redeliverDelay
		case revguard.DeadLetter:
			v.stop = fmt.Errorf("%w at %s: %w (give WithDeadLetter a place for such records)", ErrPartitionStopped, where(r), err)
		}
		v.rewind, v.delay = r, delay
		return v
	}
	return v
}

func (c *config) sendDeadLetter(ctx context.Context, r *kgo.Record, cause error) error {
	if err := c.deadLetter(ctx, r, cause); err != nil {
		//nolint:errorlint // %v: the record is redelivered; wrapping cause would make IsPermanent and Disposition say dead-letter to observers
		return fmt.Errorf("revkgo: dead-letter callback failed for %s: %w (the record failed with: %v)", where(r), err, cause)
	}
	return nil
}

// where names a record's place in the log, for errors.
func where(r *kgo.Record) string {
	return fmt.Sprintf("%s/%d@%d", r.Topic, r.Partition, r.Offset)
}
