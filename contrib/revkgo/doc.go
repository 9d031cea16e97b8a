// Package revkgo consumes Kafka with franz-go (package kgo) through a
// revguard guard: each entity's events reach the handler once and in
// revision order, each partition's records are taken in offset order, and
// the group's offsets are committed only past the records the guard
// acknowledged.
//
//	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumerGroup("prices"),
//		kgo.ConsumeTopics("price-updates"), kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll())
//	g := revguard.New(store, revkgo.Headers("", "revision")) // key: the record key
//	err = revkgo.Consume(ctx, cl, g, apply, revkgo.WithDeadLetter(toDLQ))
//
// [Consume] is the poll loop; [HandleFetches] is one turn of it, for a loop of
// your own. The guard's answer for each record ([revguard.Disposition]) says
// what happens to its partition:
//
//   - Ack (applied, a duplicate, stale): the record's offset may be
//     committed;
//   - Redeliver (the handler failed, the store could not be reached): the
//     partition is rewound to the record, which is fetched again after
//     [WithRedeliverDelay], and nothing at or after it is committed;
//   - RetryLater (another delivery of the entity is in flight, an earlier
//     revision is missing): the same, after [WithRetryDelay];
//   - DeadLetter (bad input, a Permanent handler error): Kafka cannot drop
//     one record, so [WithDeadLetter]'s callback takes it (typically
//     producing it to a dead-letter topic) and it counts as acknowledged;
//     without that option the partition stops at the record
//     ([ErrPartitionStopped]) rather than lose it.
//
// A partition that waits is paused, so the other partitions go on. Records
// after one that was not acknowledged are not handled in that poll: they
// come again behind it, so one entity's revisions are never taken out of
// partition order. Under [revguard.Sequential] ordering, that means a
// producer must write each entity's revisions to one partition in order: a
// revision written before its predecessor waits for ever.
//
// # Why the offset is not the revision
//
// Topic, partition and offset identify a delivery, not an event: they name
// one copy of a message in the log. A producer that sends the same event
// again (its acknowledgement was lost, an outbox relay ran twice) gets a new
// offset, and a consumer that deduplicates by offset applies it twice; a
// retried send that lands after the entity's next change gets the higher
// offset of the two. The revision is written by whoever owns the entity (a
// version column, an event-store sequence) and travels in the record, in a
// header ([Headers]) or the value (an Extractor of your own), so every copy of
// one change carries the same revision and an older change a lower one, at
// any offset. Offsets are still what the group commits, so that a
// restarted or rebalanced consumer resumes near where its predecessor
// stopped; the guard makes what the group delivers again harmless.
package revkgo
