// Package revjetstream runs NATS JetStream messages through a revguard
// guard and settles each one with JetStream as the guard's answer says, so
// that a consumer applies each entity's events once and in revision order.
//
//	g := revguard.New(store, revjetstream.Headers(revjetstream.KeyHeader, revjetstream.RevisionHeader))
//	cc, err := consumer.Consume(revjetstream.Handler(g, apply, revjetstream.WithAckWait(ackWait)))
//
// [Handler] is for Consume; [Handle] settles one message, for loops over
// Messages or Fetch. The guard's answer maps onto JetStream's
// acknowledgements through [revguard.Disposition]:
//
//   - applied, duplicate, stale or dead-lettered: Ack;
//   - another delivery of the entity is in flight ([revguard.ErrInFlight]), or
//     a Sequential revision arrived early ([revguard.ErrGap]): NakWithDelay,
//     so the message comes back after the delay (see [WithRetryDelay]);
//   - bad input (no key or revision header, a revision that does not
//     parse) or a [revguard.Permanent] handler error: TermWithReason, so
//     JetStream never delivers it again and its MSG_TERMINATED advisory
//     carries the reason;
//   - anything else (the handler failed, the store could not be reached, the
//     lease was lost): Nak, so it is delivered again at once, or
//     NakWithDelay with [WithRedeliverDelay], so that a store outage does
//     not make every consumer spin.
//
// While the guard runs, the message is marked InProgress every third of the
// consumer's AckWait, so that JetStream does not deliver it to another
// consumer in the meantime. Pass the consumer's AckWait with [WithAckWait].
//
// # Nats-Msg-Id is not a revision
//
// JetStream drops a message published with a Nats-Msg-Id it has stored
// within the stream's duplicate window (Duplicates, two minutes by
// default). That ID names one publication: it keeps a publisher's retry
// from being stored twice, inside the window. It says nothing of order or
// of the business event: a retry after the window, a copy republished by
// an outbox relay, and two changes of one entity published out of order
// are all stored, and every stored message reaches a consumer at least
// once (and again after AckWait, a Nak, or a consumer that dies). The
// revision comes from whoever owns the entity, and every copy of one change
// carries the same one. Publish it in its own header ([RevisionHeader]) and
// keep Nats-Msg-Id for what it does well: a publisher that sets it to the
// key and revision gets its retries inside the window dropped by the
// server, and revguard drops the rest.
package revjetstream
