// Package middleware puts a [revguard.Guard] in front of an http.Handler, for
// webhook receivers: the handler sees each entity's events once and in
// revision order, and the sender gets the answer that makes it stop
// retrying, or retry when it should.
//
// The package Example serves a webhook whose sender retries until it gets a
// 2xx. The Examples of [HTTP] and [GitHubSignature] show the answer to each
// kind of delivery, and a signature check stacked in front of the guard so
// that no forged event reaches its store:
//
//	g := revguard.New(memstore.New(), middleware.Headers("Event-Key", "Event-Revision"))
//	h := middleware.GitHubSignature(secret)(middleware.HTTP(g)(app))
//
// # Responses
//
// [HTTP] answers with the inner handler's own response when the event is
// applied. Otherwise it answers itself, and never with 500:
//
//   - 200 ([WithDropStatus]), empty body, header Revision-Outcome: duplicate
//     or stale: the revision was already applied, or a newer one was. The
//     sender should stop retrying, and does on any 2xx.
//   - 409 with Retry-After ([WithRetryAfter]): another delivery of the entity
//     is being handled ([revguard.ErrInFlight]), an earlier revision is
//     missing under Sequential ordering ([revguard.ErrGap]), or the claim was
//     lost while the handler ran without answering ([revguard.ErrLeaseLost]).
//     A retry will be handled.
//   - 400: the key or the revision is missing, malformed, sent twice with
//     different values, or refused as poison ([WithMaxFutureSkew] here, or
//     [revguard.WithMaxFutureSkew] and [revguard.WithMaxStep] on the guard); or
//     the body is not what the extractor reads (invalid JSON, say).
//   - 413 with Connection: close: the body, or its Content-Length, is above
//     [WithMaxBody].
//   - 503 with Retry-After: the store could not be reached, or gave an answer
//     the guard cannot read. The store's error is not disclosed.
//
// Every response of the middleware's own but the drop carries an RFC 9457
// application/problem+json body whose detail names the header or field at
// fault and why. [GitHubSignature] and [StripeSignature] answer 401 (with a
// problem body) for a missing or wrong signature, and 413 and 400 for a body
// they cannot read.
//
// # The inner handler
//
// The inner handler's status decides the claim: 2xx, 3xx and the 4xx that
// no retry of the same request can cure (400, 401, 403, 404, 409, 410, 422,
// ...) commit the revision; 5xx and the 4xx that ask the sender to come
// back (408, 425, 429) release it, so that the sender's retry runs the
// handler again, and so does a body that went past [WithMaxBody] while the
// handler read it, whatever the handler answered (often a 413 of its own).
// A handler that sends no status gets net/http's 200 and commits. A
// panic is not recovered: the guard releases the claim as the panic passes,
// and net/http or the application's own recovery middleware sees the
// original value and stack. Once the inner handler has sent its response
// the middleware adds nothing to it, even if recording the revision then
// fails: the revision stays unrecorded and a redelivery runs the handler
// again. A handler that hijacks the connection commits. The request's
// context is the guard's: it is cancelled if the claim is lost while the
// handler runs, and in Transactional mode it carries the transaction
// (sqlstore.TxFrom).
//
// The http.ResponseWriter the inner handler gets implements http.Flusher,
// http.Hijacker and io.ReaderFrom on top of the server's, and Unwrap, so that
// http.ResponseController reaches deadlines and full duplex.
//
// # Replaying responses
//
// [WithReplay] answers a repeat of an applied request the way an API answers a
// retried POST with an Idempotency-Key: with the first response again
// (status, the headers that describe the body, the body; header
// Idempotent-Replayed: true), kept with the revision in the store's own
// commit ([revguard.Payloads], [revguard.Guard.HandleReply]), and with 422 when
// the repeat carries another method, path or body. Responses above
// [WithMaxReplayBody] (64 KiB) or streamed with Flush or Hijack are not kept;
// their repeats get the drop answer above. A repeat that arrives while the
// first is still running gets 409, or with [WithWaitInFlight] waits for the
// first to finish and gets its response.
//
// # Bodies
//
// Every body is limited to WithMaxBody (1 MiB by default), whoever reads it.
// Extractors that need the body ([JSONFields], [CloudEvents] in structured
// mode, custom ones through [ReadBody]) read it once and leave it for the
// inner handler to read from the start; signature middleware does the same,
// and a body read there is not read again.
//
// # Poisoning
//
// One event stamped far in the future would make every later event of its
// entity stale. Extractors therefore refuse, with 400, revisions read from
// a timestamp (ce-time, an RFC 3339 header value or JSON string) that lie
// more than [WithMaxFutureSkew] (5 minutes by default) after the clock.
// Counters are not bounded by it: their numbers mean nothing as times, and
// [revguard.WithMaxStep] on the guard bounds them instead. The bound is
// checked by the extractors rather than by the guard because only they know
// whether a revision was written as a time; the middleware passes its
// setting to them on the request. Extractors used without the middleware
// apply [DefaultMaxFutureSkew]. [revguard.WithMaxFutureSkew] on the guard still
// works, for every revision.
//
// Signatures are checked before the guard runs, so that no unsigned request
// changes a stored revision.
//
// # Signatures
//
// GitHubSignature, StripeSignature, [SlackSignature], [ShopifySignature] and
// [StandardWebhooks] check the HMAC-SHA256 signatures of those senders;
// [StandardWebhooksPublicKey] checks the Ed25519 signatures of Standard
// Webhooks; [HMACSignature] takes an [HMACScheme] for any other sender that
// signs a template of headers and body. All compare in constant time, accept
// any of several secrets for rotation ([WithExtraSecrets]), and refuse a signed
// timestamp further than [WithTolerance] (5 minutes) from the clock in either
// direction. A signed timestamp is the time of the attempt, new on every
// retry: it proves freshness, never order, so it is never a revision.
// [WebhookID] keys the guard by the Standard Webhooks message ID instead, so
// that each message is applied once.
package middleware
