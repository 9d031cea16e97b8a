// Package revsqs runs the messages of an AWS Lambda SQS batch through a
// [revguard.Guard] and reports, in the handler's SQSEventResponse, exactly the
// messages SQS must deliver again. Turn on ReportBatchItemFailures in the
// event source mapping so that SQS redelivers those and deletes the rest:
//
//	g := revguard.New(store, revsqs.Attributes("entity", "revision"))
//	lambda.Start(revsqs.Handler(g, apply))
//
// A message the guard applied, dropped as a duplicate or stale, or handed to
// [revguard.WithDeadLetter] is a success ([revguard.Disposition]'s Ack). Every
// other message is reported as a batch item failure, whichever of the other
// actions Disposition gives it, since reporting is all SQS offers a Lambda
// function:
//
//   - Redeliver (a handler error, a lost lease, the store unreachable): the
//     message comes back once its visibility timeout has passed.
//   - RetryLater ([revguard.ErrInFlight], [revguard.ErrGap]): likewise; the
//     visibility timeout is the delay. [WithRetryLater] lets you shorten it
//     with ChangeMessageVisibility through your own SQS client.
//   - DeadLetter (an unreadable key or revision, or a [revguard.Permanent]
//     handler error that no revguard.WithDeadLetter took): SQS has no
//     terminate, and deleting the message would lose it unseen, so it is
//     reported too and the queue's redrive policy moves it to the
//     dead-letter queue after maxReceiveCount receives. Give the queue a
//     redrive policy; give the guard revguard.WithDeadLetter to take
//     Permanent handler errors at once instead.
//
// On a standard queue, which promises no order, the batch goes through
// Guard.HandleBatch: one store round trip claims it and one commits it, only
// each entity's newest revision in the batch runs (under [revguard.Latest]),
// and the guard's [revguard.WithBatchConcurrency] runs handlers of distinct
// entities at once.
// On a FIFO queue (an event source ARN ending in ".fifo") the messages are
// handled one by one, in order, and AWS's rule applies: at the first
// failure, that message and every later one of the batch are reported and
// the later ones never reach the handler. [SkipGroupOnError] narrows that to
// the rest of the failing message's group.
//
// The revision must come from the producer: MessageId is a delivery
// identifier, unique per message sent, and a FIFO queue's SequenceNumber
// numbers sends, not versions of an entity, so neither orders an entity's
// states. [Attributes] reads key and revision from message attributes.
package revsqs
