// Package revwatermill puts a [revguard.Guard] in front of watermill handlers,
// as a router middleware: each entity's messages reach the handler once and
// in revision order, whichever process of a consumer group receives them.
//
//	g := revguard.New(store, revwatermill.Metadata(revwatermill.KeyField, revwatermill.RevisionField))
//	router.AddMiddleware(revwatermill.Middleware(g))
//
// It replaces watermill's Deduplicator middleware, which has two flaws: its
// memory of seen messages lives in one process, and it records a message as
// seen before the handler has succeeded, so that the retry of a failed
// handler is dropped as a duplicate and the message is lost. The guard keeps
// its applied revisions in a store shared by every process (redisstore,
// sqlstore) and records a revision only once its handler has returned nil.
//
// # Acknowledging
//
// [Middleware] maps the guard's answer through [revguard.Disposition].
// [revguard.Ack] returns the handler's produced messages (none for a
// duplicate or stale message, whose handler did not run, nor for one
// [revguard.WithDeadLetter] took), and the router acknowledges. Every other
// answer returns the guard's error, and the router nacks the message:
//
//   - RetryLater ([revguard.ErrInFlight], [revguard.ErrGap]): another delivery
//     of the entity is being handled, or an earlier revision is missing.
//   - Redeliver: the handler failed, the lease was lost, or the store could
//     not be reached.
//   - DeadLetter (a missing or malformed key or revision, or a
//     [revguard.Permanent] handler error that no WithDeadLetter took): no
//     delivery will ever succeed.
//
// Route the DeadLetter answers to a poison queue with [IsDeadLetter], so that
// they stop coming back, and retry the others:
//
//	poison, err := middleware.PoisonQueueWithFilter(pub, "poison", revwatermill.IsDeadLetter)
//	retry := middleware.Retry{MaxRetries: 5, InitialInterval: 100 * time.Millisecond, ShouldRetry: revwatermill.ShouldRetry}
//	handler.AddMiddleware(poison, retry.Middleware, revwatermill.Middleware(g))
//
// The first middleware added is the outermost, so the guard goes last.
// Router.AddMiddleware wraps every handler of the router: where the router
// has others, such as one reading the poison queue, add the guard to its
// handler alone. Do not put the unfiltered PoisonQueue in front of the
// guard: it would take the messages that only have to wait (ErrGap), and
// they would never be applied.
//
// Middleware neither waits nor sets a delay: the one Disposition suggests
// for RetryLater ([revguard.RetryDelay]) is left to the Retry middleware's
// backoff, or to middleware.DelayOnError on a Pub/Sub that honours
// watermill's delay metadata.
//
// # The handler
//
// While the handler runs, msg.Context() is the guard's context: it is
// cancelled if the claim's lease is lost, and in the Transactional mode
// sqlstore.TxFrom(msg.Context()) returns the transaction that records the
// revision. The router publishes the produced messages after the revision is
// recorded; if that publish fails, the redelivery is a duplicate and they are
// not published again. Where they must not be lost, publish them from the
// handler, so that a failed publish fails the handler and the message is
// handled again.
package revwatermill
