package revkgo

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/revguard/revguard"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Consume polls cl and runs every record through g with h until ctx ends
// or the client is closed, committing each partition's offsets only past
// the records the guard acknowledged; see [HandleFetches] for what one poll
// does. It returns ctx's error or kgo.ErrClientClosed, and at once an error
// naming what is missing if the client lacks what Consume relies on:
//
//   - kgo.ConsumerGroup: offsets are committed to the group;
//   - kgo.DisableAutoCommit: autocommitting would commit records the guard
//     did not acknowledge;
//   - kgo.BlockRebalanceOnPoll: no rebalance can take a partition between
//     a poll and its commit, so a revoked partition's offsets are never
//     committed by its former owner.
//
// Nothing else may poll cl meanwhile. Errors Consume goes on after (a
// failed fetch or commit, a stopped partition) go to [WithErrorHandler].
// Consume allows rebalancing before it returns, so cl.Close may follow.
func Consume(ctx context.Context, cl *kgo.Client, g *revguard.Guard[*kgo.Record], h revguard.Handler[*kgo.Record], opts ...Option) error {
	if err := check(cl, g, h); err != nil {
		return err
	}
	c := newConfig(opts)
	for {
		fetches := cl.PollRecords(ctx, c.pollRecords)
		if fetches.IsClientClosed() {
			return kgo.ErrClientClosed
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				c.onError(fmt.Errorf("revkgo: fetching %s/%d: %w", topic, partition, err))
			}
		})
		// Records that came with ctx's end are handled too (their handlers
		// see the ended ctx and fail), so that they are rewound: the client
		// may be polled again.
		if err := c.handle(ctx, cl, g, h, fetches); err != nil && !errors.Is(err, kgo.ErrClientClosed) {
			c.onError(err)
		}
		cl.AllowRebalance()
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// check returns an error if Consume or HandleFetches cannot work with these.
func check(cl *kgo.Client, g *revguard.Guard[*kgo.Record], h revguard.Handler[*kgo.Record]) error {
	switch {
	case cl == nil:
		return errors.New("revkgo: nil client")
	case g == nil:
		return errors.New("revkgo: nil guard")
	case h == nil:
		return errors.New("revkgo: nil handler")
	}
	var missing []string
	if group, _ := cl.OptValue(kgo.ConsumerGroup).(string); group == "" {
		missing = append(missing, "kgo.ConsumerGroup (offsets are committed to a group)")
	}
	if off, _ := cl.OptValue(kgo.DisableAutoCommit).(bool); !off {
		missing = append(missing, "kgo.DisableAutoCommit (autocommitting would commit records the guard did not acknowledge)")
	}
	if block, _ := cl.OptValue(kgo.BlockRebalanceOnPoll).(bool); !block {
		missing = append(missing, "kgo.BlockRebalanceOnPoll (a rebalance between handling and committing would commit partitions the client no longer owns)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("revkgo: the client needs the options %s", strings.Join(missing, ", "))
	}
	return nil
}
