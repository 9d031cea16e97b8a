package revkgo

import (
	"context"
	"log/slog"
	"time"

	"github.com/revguard/revguard"
	"github.com/twmb/franz-go/pkg/kgo"
)

// An Option configures [Consume] and [HandleFetches].
type Option func(*config)

type config struct {
	deadLetter     func(context.Context, *kgo.Record, error) error
	observe        func(*kgo.Record, revguard.Outcome, error)
	onError        func(error)
	retryDelay     time.Duration
	retrySet       bool
	redeliverDelay time.Duration
	pollRecords    int
}

// RedeliverDelay is how long a partition waits, by default, before a record
// whose handler failed is fetched again. Kafka has no backoff of its own: a
// failure that lasts, such as a store outage, would otherwise be retried as
// fast as the partition can be fetched.
const RedeliverDelay = 100 * time.Millisecond

func newConfig(opts []Option) config {
	c := config{
		redeliverDelay: RedeliverDelay,
		pollRecords:    500,
		onError: func(err error) {
			slog.Default().Error("revkgo: consuming", "err", err)
		},
	}
	for _, o := range opts {
		if o == nil {
			panic("revkgo: nil Option")
		}
		o(&c)
	}
	return c
}

// WithDeadLetter sets the callback that takes the records no redelivery will
// cure: bad input (a missing key or an unparsable revision, which the guard
// refuses before the handler runs) and Permanent handler errors that no
// [revguard.WithDeadLetter] took. It typically produces the record to a
// dead-letter topic. When it returns nil the record counts as acknowledged
// and its offset is committed; when it fails, the partition is rewound to
// the record, which comes again.
//
// Kafka has no way to drop one record, so without this option such a record
// stops its partition: the partition is rewound to it and paused, nothing at
// or after it is committed, and the error, wrapping [ErrPartitionStopped],
// goes to [WithErrorHandler] ([HandleFetches] returns it). The partition stays
// paused until the process restarts or cl.ResumeFetchPartitions resumes it.
// A record is never skipped silently. The default is none.
//
// Prefer revguard.WithDeadLetter for Permanent handler errors: it also
// records the revision, so that copies of the event still in the topic are
// dropped as duplicates. The same function can serve both.
func WithDeadLetter(fn func(ctx context.Context, r *kgo.Record, err error) error) Option {
	if fn == nil {
		panic("revkgo: WithDeadLetter(nil)")
	}
	return func(c *config) { c.deadLetter = fn }
}

// WithObserver sets fn to be told what became of each record the guard
// answered: its outcome ([revguard.DeadLettered] when [WithDeadLetter] took it)
// with a nil error when it was acknowledged, or the error that kept it from
// being acknowledged. Records of several partitions are handled at once, so
// fn may be called concurrently; a partition's records reach it in order.
// The default is none.
func WithObserver(fn func(r *kgo.Record, out revguard.Outcome, err error)) Option {
	if fn == nil {
		panic("revkgo: WithObserver(nil)")
	}
	return func(c *config) { c.observe = fn }
}

// WithErrorHandler sets fn to receive what [Consume] cannot return without
// stopping: a fetch error, a failed commit (the records are fetched again and
// their commit retried), a partition stopped at a record no one could take
// ([ErrPartitionStopped]). Consume goes on after each. [HandleFetches] ignores
// this option and returns its errors. The default logs each with
// slog.Default() at level Error.
func WithErrorHandler(fn func(err error)) Option {
	if fn == nil {
		panic("revkgo: WithErrorHandler(nil)")
	}
	return func(c *config) { c.onError = fn }
}

// WithRetryDelay sets how long a partition waits before a record the guard
// asked to retry later ([revguard.ErrInFlight], [revguard.ErrGap]) is fetched
// again; the partition is paused meanwhile, and the others go on. The
// default is the delay [revguard.Disposition] gives ([revguard.RetryDelay]).
func WithRetryDelay(d time.Duration) Option {
	return func(c *config) { c.retryDelay, c.retrySet = max(d, 0), true }
}

// WithRedeliverDelay sets how long a partition waits before a record whose
// handler failed (or whose claim, store call or dead-letter callback failed)
// is fetched again; the partition is paused meanwhile, and the others go on.
// Zero fetches it again at the next poll. The default is [RedeliverDelay].
func WithRedeliverDelay(d time.Duration) Option {
	return func(c *config) { c.redeliverDelay = max(d, 0) }
}

// WithPollRecords sets the most records [Consume] takes in one poll. The group
// cannot rebalance while a poll's records are handled, so a poll should take
// no longer than the client's kgo.RebalanceTimeout. [HandleFetches] ignores
// this option. The default is 500.
func WithPollRecords(n int) Option {
	if n <= 0 {
		panic("revkgo: WithPollRecords needs a positive count")
	}
	return func(c *config) { c.pollRecords = n }
}
