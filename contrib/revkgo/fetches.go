package revkgo

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/revguard/revguard"
	"github.com/twmb/franz-go/pkg/kgo"
)

// HandleFetches handles one poll's records, for a consumer that runs its
// own poll loop; [Consume] is that loop. Call it after cl.PollRecords and
// before cl.AllowRebalance, from the goroutine that polls:
//
//	fetches := cl.PollRecords(ctx, 500)
//	err := revkgo.HandleFetches(ctx, cl, g, h, fetches)
//	cl.AllowRebalance()
//
// Each partition's records go through the guard in order, in a goroutine
// of the partition's own, up to the first record not acknowledged (see
// [revguard.Disposition]). Then, per partition, the offset after the last
// acknowledged record is committed, and the partition is rewound to the
// first record not acknowledged so that it is fetched again, after the
// delay [WithRetryDelay] or [WithRedeliverDelay] sets, during which the
// partition is paused and the others go on. Records after that one are
// not handled in this poll: they come again behind it.
//
// It returns an error if the client is not set up as Consume requires, if
// the commit failed (the poll's records are then fetched again and
// committed with a later poll), or if a partition stopped
// ([ErrPartitionStopped]). Errors inside fetches are the caller's to read.
func HandleFetches(ctx context.Context, cl *kgo.Client, g *revguard.Guard[*kgo.Record], h revguard.Handler[*kgo.Record], fetches kgo.Fetches, opts ...Option) error {
	if err := check(cl, g, h); err != nil {
		return err
	}
	c := newConfig(opts)
	return c.handle(ctx, cl, g, h, fetches)
}

func (c *config) handle(ctx context.Context, cl *kgo.Client, g *revguard.Guard[*kgo.Record], h revguard.Handler[*kgo.Record], fetches kgo.Fetches) error {
	parts := byPartition(fetches)
	verdicts := make([]verdict, len(parts))
	var wg sync.WaitGroup
	for i, recs := range parts {
		wg.Go(func() { verdicts[i] = c.partition(ctx, g, h, recs) })
	}
	wg.Wait()
	return settle(ctx, cl, verdicts)
}

// byPartition gathers the records of each partition, in offset order; a
// poll may hold one partition in more than one fetch.
func byPartition(fetches kgo.Fetches) [][]*kgo.Record {
	type tp struct {
		topic     string
		partition int32
	}
	index := map[tp]int{}
	var parts [][]*kgo.Record
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) == 0 {
			return
		}
		k := tp{p.Topic, p.Partition}
		i, ok := index[k]
		if !ok {
			i = len(parts)
			index[k] = i
			parts = append(parts, nil)
		}
		parts[i] = append(parts[i], p.Records...)
	})
	return parts
}

// settle commits what the partitions acknowledged, rewinds each to its
// first record not acknowledged, and pauses those that must wait. It runs
// before AllowRebalance, so it only ever commits and rewinds partitions the
// client still owns.
func settle(ctx context.Context, cl *kgo.Client, verdicts []verdict) error {
	var acked []*kgo.Record
	for _, v := range verdicts {
		if v.acked != nil {
			acked = append(acked, v.acked)
		}
	}
	var errs []error
	if len(acked) > 0 {
		// The records were applied even if ctx has ended: commit them.
		// CommitRecords commits, per partition, the offset after the record.
		if err := cl.CommitRecords(context.WithoutCancel(ctx), acked...); err != nil {
			errs = append(errs, fmt.Errorf("revkgo: committing: %w", err))
			// Fetch the poll's records again, so that a later poll commits
			// them; the guard drops the repeats.
			for i := range verdicts {
				if v := &verdicts[i]; v.acked != nil {
					v.rewind = v.first
				}
			}
		}
	}
	rewind := map[string]map[int32]kgo.EpochOffset{}
	for _, v := range verdicts {
		r := v.rewind
		if r == nil {
			continue
		}
		if rewind[r.Topic] == nil {
			rewind[r.Topic] = map[int32]kgo.EpochOffset{}
		}
		rewind[r.Topic][r.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset}
		if v.stop != nil {
			errs = append(errs, v.stop)
			pause(cl, r, -1)
		} else if v.delay > 0 {
			pause(cl, r, v.delay)
		}
	}
	cl.SetOffsets(rewind)
	return errors.Join(errs...)
}

// pause stops fetching r's partition for d, or for good if d < 0. A poll
// never returns a paused partition's records, so a partition is paused
// again only after its timer resumed it: no timer ends a newer pause. A
// pause outlives rebalances; resuming a partition the client no longer
// consumes does nothing.
func pause(cl *kgo.Client, r *kgo.Record, d time.Duration) {
	tp := map[string][]int32{r.Topic: {r.Partition}}
	cl.PauseFetchPartitions(tp)
	if d < 0 {
		return
	}
	time.AfterFunc(d, func() {
		if cl.Context().Err() == nil {
			cl.ResumeFetchPartitions(tp)
		}
	})
}
