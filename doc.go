// Package revguard lets an at-least-once consumer apply each entity's events
// in revision order, exactly once.
//
// Transports such as Kafka, SQS, Redis Streams, NATS and webhooks deliver
// events twice and out of order. Every event carries an entity key and a
// revision (a per-entity counter, or a timestamp: see Timestamp). A Guard
// compares the event's revision with the highest one already applied for the
// entity and runs the handler only when the event is newer; repeated and
// stale events are dropped before the handler runs. The compare-and-set runs
// atomically in a Store shared by every consumer process:
//
//   - backends/memstore: in-process, the default for one process and tests;
//   - backends/redisstore: Redis (single server, Sentinel, Cluster), Lua scripts;
//   - backends/sqlstore: PostgreSQL, SQLite, MySQL/MariaDB, conditional upserts,
//     and the Transactional mode.
//
// # Acknowledging
//
// The one rule a consumer follows: err == nil means acknowledge the message.
// It was applied, or it is a duplicate or stale and dropping it is correct.
// Any error means do not acknowledge, so the transport delivers it again:
// the handler failed, another delivery of the entity is in flight
// (ErrInFlight), a Sequential revision arrived early (ErrGap), the lease was
// lost (ErrLeaseLost), or the store could not be reached. Bad input
// (ErrInvalidKey, ErrInvalidRevision, ErrInvalidEvent) will never succeed:
// send it to a dead-letter queue. Disposition turns any of these answers
// into the Action a transport takes (Ack, RetryLater, DeadLetter,
// Redeliver); the adapters under contrib/ (watermill, NATS JetStream, AWS
// Lambda SQS, franz-go, the CloudEvents SDK) apply it for their stack.
//
// # Modes
//
// Claim (the default) claims the revision with a lease before the handler
// runs and commits it after: a handler that fails or whose process dies runs
// again on redelivery, and one handler per entity runs at a time. AtMostOnce
// records the revision first, in one round trip: cheaper, but a failed
// handler is not retried. Transactional (sqlstore) records the revision in
// the handler's own database transaction: exactly-once effects for state
// kept in that database.
//
// # Ordering
//
// Latest (the default) applies any revision above the applied one: events
// carry full state and the newest wins. Sequential applies only the next
// revision: events are deltas that must all be applied, in order.
//
// # Cost
//
// Every decision is one store call (two in Claim mode: claim and commit).
// Concurrent Handle calls on one guard share them: while one claim (or
// commit) is on its way, the calls that arrive wait and go out together in
// one multi-key call, so a consumer with many goroutines makes far fewer
// round trips than it handles events; a lone call never waits (see
// WithoutCoalescing). HandleBatch claims and commits a batch in one call
// each, and WithBatchConcurrency runs its handlers of distinct entities at
// once. On memstore, which lives in the process, a claim needs no lease.
// WithDropCache lets a guard drop redeliveries of revisions it saw applied
// without a store call, where no other process lowers revisions.
package revguard
