package revguard

import (
	"fmt"
	"log/slog"
	"time"
	"unicode/utf8"

	"github.com/revguard/revguard/internal/text"
)

// Mode says when the guard records a revision as applied.
type Mode uint8

const (
	// Claim claims the revision with a lease before the handler runs and
	// commits it after the handler succeeds: a failed or crashed handler runs
	// again on redelivery, and at most one handler per entity runs at a time.
	Claim Mode = iota + 1
	// AtMostOnce records the revision before the handler runs, in one round
	// trip: a failed handler is not run again.
	AtMostOnce
	// Transactional records the revision in the same database transaction as
	// the handler's own writes (sqlstore only).
	Transactional
)

// String returns the mode's Go name ("AtMostOnce"), for logs.
func (m Mode) String() string {
	switch m {
	case Claim:
		return "Claim"
	case AtMostOnce:
		return "AtMostOnce"
	case Transactional:
		return "Transactional"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// Ordering says which revisions apply.
type Ordering uint8

const (
	// Latest applies any revision above the applied one: events carry the
	// entity's full state and the newest wins.
	Latest Ordering = iota + 1
	// Sequential applies only applied+1: events are deltas and none may be
	// skipped. A revision further ahead returns [ErrGap].
	Sequential
)

// String returns the ordering's Go name ("Sequential"), for logs.
func (o Ordering) String() string {
	switch o {
	case Latest:
		return "Latest"
	case Sequential:
		return "Sequential"
	}
	return fmt.Sprintf("Ordering(%d)", uint8(o))
}

// Option configures a [Guard].
type Option func(*config)

type config struct {
	namespace  string
	lease      time.Duration
	mode       Mode
	ordering   Ordering
	first      Revision
	skew       time.Duration
	maxStep    uint64
	observer   func(Decision)
	hooks      Hooks
	logger     *slog.Logger
	deadLetter any // func(context.Context, T, error) error
	shadow     bool
	cacheSize  int
	now        func() time.Time

	coalesce    bool
	concurrency int
}

func defaults() config {
	return config{lease: 30 * time.Second, mode: Claim, ordering: Latest, first: 1, now: time.Now, coalesce: true, concurrency: 1}
}

// MaxNamespaceLen is the longest namespace, in bytes.
const MaxNamespaceLen = 255

// WithNamespace keeps this guard's applied revisions apart from those of
// guards with another namespace on the same store, so that two services
// reading one stream each apply every event. Valid UTF-8 of at most 255
// bytes. The default is "" (one shared namespace).
func WithNamespace(ns string) Option {
	if len(ns) > MaxNamespaceLen || !utf8.ValidString(ns) {
		panic(fmt.Sprintf("revguard: WithNamespace(%s): want valid UTF-8 of at most %d bytes", text.Quote(ns), MaxNamespaceLen))
	}
	return func(c *config) { c.namespace = ns }
}

// WithLease sets how long a claim lives without renewal in [Claim] mode. The
// guard renews it every third of d while the handler runs, so d bounds how
// long a crashed consumer blocks its entities, not how long a handler may
// take. The default is 30s.
func WithLease(d time.Duration) Option {
	if d < 3*time.Millisecond {
		panic(fmt.Sprintf("revguard: WithLease(%s): want at least 3ms", d))
	}
	return func(c *config) { c.lease = d }
}

// WithMode sets the [Mode]. The default is [Claim].
func WithMode(m Mode) Option {
	if m < Claim || m > Transactional {
		panic(fmt.Sprintf("revguard: WithMode(%d): unknown mode", uint8(m)))
	}
	return func(c *config) { c.mode = m }
}

// WithOrdering sets the [Ordering]. The default is [Latest].
func WithOrdering(o Ordering) Option {
	if o < Latest || o > Sequential {
		panic(fmt.Sprintf("revguard: WithOrdering(%d): unknown ordering", uint8(o)))
	}
	return func(c *config) { c.ordering = o }
}

// WithFirstRevision sets the revision a [Sequential] entity starts at, when
// nothing has been applied to it. The default is 1.
func WithFirstRevision(r Revision) Option {
	return func(c *config) { c.first = r }
}

// WithMaxFutureSkew refuses, with [ErrInvalidRevision], revisions read as Unix
// nanoseconds that lie more than d after the guard's clock: one bogus event
// far in the future would otherwise make every later one stale. For guards
// whose revisions are timestamps. The default is no bound.
func WithMaxFutureSkew(d time.Duration) Option {
	if d <= 0 {
		panic(fmt.Sprintf("revguard: WithMaxFutureSkew(%s): want a positive duration", d))
	}
	return func(c *config) { c.skew = d }
}

// WithMaxStep refuses, with [ErrInvalidRevision], revisions more than n above
// the applied one. An entity with nothing applied is not bounded, so a
// consumer can join a stream midway. For guards whose revisions are
// counters. The default is no bound.
func WithMaxStep(n uint64) Option {
	if n == 0 {
		panic("revguard: WithMaxStep(0): want at least 1")
	}
	return func(c *config) { c.maxStep = n }
}

// WithObserver calls fn after every decision, from the goroutine that made
// it; fn must be fast and safe for concurrent use. The default is none.
func WithObserver(fn func(Decision)) Option {
	return func(c *config) { c.observer = fn }
}

// WithLogger logs decisions to l: applied at Debug, drops at Info (they are
// expected behaviour), retryable refusals at Info, bad input and failures at
// Warn. The default is no logging.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

// WithClock sets the clock [WithMaxFutureSkew] compares with. The default is
// time.Now.
func WithClock(now func() time.Time) Option {
	if now == nil {
		panic("revguard: WithClock(nil)")
	}
	return func(c *config) { c.now = now }
}

// WithShadow makes the guard decide and report, through the observer, the
// logger and [Guard.Stats], but drop nothing: every event reaches its handler
// and [Guard.Handle] returns the handler's error alone, whatever the guard
// decided. It is for rolling revguard out in front of a running consumer and
// watching what it would do. Decisions are still recorded in the store, so
// the guard's state is warm when shadow mode is switched off. The default is
// off.
func WithShadow() Option {
	return func(c *config) { c.shadow = true }
}

// WithDropCache keeps, for up to size entities, the highest revision this
// guard saw applied, so that a duplicate or stale delivery of one of them is
// dropped without a store call (about 100 ns instead of a round trip). The
// least recently used entries make way for new ones; each costs about 100
// bytes plus its key.
//
// It never drops an event the store would apply, because an applied
// revision only grows, with two exceptions it must hear of:
// [Guard.SetApplied] and Forget through this guard clear it, but a revision
// lowered by another guard or process (an operator's repair, a Forget
// elsewhere) is not seen, and this guard goes on dropping events at or below
// the old revision until their entries make way or the process restarts. Use
// it where no other process lowers revisions while consumers run, or repair
// through every consumer's guard. [New] panics if the store expires entities
// (redisstore WithTTL). A drop answered from the cache is [Duplicate] when
// the revision is the highest one the cache saw applied, even if another
// process has since applied a higher one (the store would then say [Stale]);
// it is a drop either way. [Stats.Cached] counts these drops.
//
// The default is 0: no cache, every event asks the store.
func WithDropCache(size int) Option {
	if size < 0 {
		panic(fmt.Sprintf("revguard: WithDropCache(%d): want 0 (off) or more entries", size))
	}
	return func(c *config) { c.cacheSize = size }
}

// WithoutCoalescing makes every [Guard.Handle] call send its own store calls.
// By default, concurrent calls on one guard share them: while a claim (or a
// commit) is on its way to the store, the calls that arrive wait, and go out
// together in one batch call when it returns, the way [Guard.HandleBatch]
// sends a batch. A lone call never waits: it sends at once, from its own
// goroutine. Each call keeps its own context, outcome and errors, and two
// calls for one entity never share a store call, so they are decided as if
// made one after the other. Stores that live in the process ([InProcess],
// such as memstore) are never coalesced: their calls cost less than waiting.
// The default is on for every other store.
func WithoutCoalescing() Option {
	return func(c *config) { c.coalesce = false }
}

// WithBatchConcurrency lets [Guard.HandleBatch] run up to n handlers at once,
// each of another entity; a key's events still run one at a time, in revision
// order. For handlers that wait on I/O: a batch of 100 events whose handler
// waits 5ms takes half a second one after another, 50ms ten at a time.
// Handlers must then be safe for concurrent use. [Transactional] mode runs
// them one after another all the same: each holds a transaction of its own
// until it returns. The default is 1.
func WithBatchConcurrency(n int) Option {
	if n < 1 {
		panic(fmt.Sprintf("revguard: WithBatchConcurrency(%d): want at least 1", n))
	}
	return func(c *config) { c.concurrency = n }
}

// Decision is what an observer is told about one event.
type Decision struct {
	Namespace string        // the guard's
	Key       string        // the event's entity key
	Revision  Revision      // the event's revision
	Applied   State         // the entity as the store saw it before deciding
	Outcome   Outcome       // 0 when Err is not nil
	Cached    bool          // a drop answered by WithDropCache's cache: Applied is what the cache knew
	Err       error         // nil when the event may be acknowledged
	Duration  time.Duration // from extraction to the end of the handler and commit
	Mode      Mode          // the guard's mode
	// HandlerTime is how long the handler ran for this event; 0 when it
	// did not run (a drop, a refusal, a copy within a batch).
	HandlerTime time.Duration
}
