// Package revguard lets an at-least-once consumer apply each entity's events
// in revision order, exactly once.
//
// Transports such as Kafka, SQS, Redis Streams, NATS and webhooks deliver
// events twice and out of order. Every event carries an entity key and a
// revision (a per-entity counter, or a timestamp: see [Timestamp]). A [Guard]
// compares the event's revision with the highest one already applied for the
// entity and runs the handler only when the event is newer; repeated and
// stale events are dropped before the handler runs. The compare-and-set runs
// atomically in a [Store] shared by every consumer process:
//
//   - backends/memstore: in-process, the default for one process and tests;
//   - backends/redisstore: Redis (single server, Sentinel, Cluster), Lua scripts;
//   - backends/sqlstore: PostgreSQL, SQLite, MySQL/MariaDB, conditional upserts,
//     and the [Transactional] mode.
//
// The package Example runs one entity's deliveries as a transport makes
// them: a failed attempt, a repeat, a late arrival. Each backend and the
// HTTP middleware (package middleware) open with an Example of their own.
//
// # Using a guard
//
// [New] makes a guard from a store and an [Extractor], which reads an
// event's key and revision ([Key] builds a key from several fields;
// [ParseRevision] and [Timestamp] make revisions of text and times).
// [Guard.Handle] runs a [Handler] on one event; [Guard.Wrap] turns a handler
// into one for any consumer loop; [Guard.HandleBatch] takes a batch, and
// [Guard.HandleReply] keeps the handler's reply for the repeats.
// [Guard.Check] answers without changing anything; [Guard.Applied],
// [Guard.SetApplied] and [Guard.Forget] read and repair one entity. The
// With options choose the mode, the ordering, the namespace and the bounds
// on untrusted revisions, each stating its default; [Guard.Stats],
// [WithObserver] and [WithHooks] tell what the guard did. In the index, the
// types a store implements sort among these names: "Writing a store" below
// lists them, and a user of the library needs none of them.
//
// # Acknowledging
//
// The one rule a consumer follows: err == nil means acknowledge the message.
// It was applied, or it is a duplicate or stale and dropping it is correct.
// Any error means do not acknowledge, so the transport delivers it again:
// the handler failed, another delivery of the entity is in flight
// ([ErrInFlight]), a [Sequential] revision arrived early ([ErrGap]), the
// lease was lost ([ErrLeaseLost]), or the store could not be reached (a
// [*StoreError]). Bad input ([ErrInvalidKey], [ErrInvalidRevision],
// [ErrInvalidEvent]) will never succeed: send it to a dead-letter queue, as
// [WithDeadLetter] does with handler errors marked [Permanent].
// [Disposition] turns any of these answers into the [Action] a transport
// takes ([Ack], [RetryLater], [DeadLetter], [Redeliver]); the adapters under
// contrib/ (watermill, NATS JetStream, AWS Lambda SQS, franz-go, the
// CloudEvents SDK) apply it for their stack.
//
// # Modes
//
// [Claim] (the default) claims the revision with a lease before the handler
// runs and commits it after: a handler that fails or whose process dies runs
// again on redelivery, and one handler per entity runs at a time. [AtMostOnce]
// records the revision first, in one round trip: cheaper, but a failed
// handler is not retried. [Transactional] (sqlstore) records the revision in
// the handler's own database transaction: exactly-once effects for state
// kept in that database.
//
// # Ordering
//
// [Latest] (the default) applies any revision above the applied one: events
// carry full state and the newest wins. Sequential applies only the next
// revision: events are deltas that must all be applied, in order.
//
// # Cost
//
// Every decision is one store call (two in Claim mode: claim and commit).
// Concurrent [Guard.Handle] calls on one guard share them: while one claim (or
// commit) is on its way, the calls that arrive wait and go out together in
// one multi-key call, so a consumer with many goroutines makes far fewer
// round trips than it handles events; a lone call never waits (see
// [WithoutCoalescing]). [Guard.HandleBatch] claims and commits a batch in one
// call each, and [WithBatchConcurrency] runs its handlers of distinct
// entities at once. On memstore, which lives in the process, a claim needs no
// lease. [WithDropCache] lets a guard drop redeliveries of revisions it saw
// applied without a store call, where no other process lowers revisions.
//
// # Writing a store
//
// The rest of the package is the contract between the guard and its stores,
// for those who write one. A store implements [Store]: it answers each
// [Request] with a [Reply], a [Verdict] and the [State] the entity was in,
// and renews, commits ([Commit] in a batch) and releases a claim only for
// the [Token] that holds it. [Request.Decide] and [Request.DecideClaim] are
// the decision written once in Go: a store calls them, or makes the same
// decision in its own language (Lua, SQL). Optional interfaces add what a
// mode or a feature needs: [Transactor] for the Transactional mode,
// [Payloads] for [Guard.HandleReply], [Inspector] (with [Entity] and
// [ClaimState]) for the operators' command cmd/revguard; [Expiring] and
// [InProcess] tell the guard what it may cache and whether it needs a lease.
// [CheckKey], [CheckPayload], [MaxNamespaceLen] and [MaxPayload] are the
// limits every store accepts. The conformance suite, backendtest.Run in
// backends/backendtest, checks all of it against a function that returns a
// fresh store; every backend here passes it.
package revguard
