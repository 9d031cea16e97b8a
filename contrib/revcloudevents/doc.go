// Package revcloudevents runs the events a CloudEvents SDK client receives
// through a [revguard.Guard], for client.StartReceiver:
//
//	g := revguard.New(store, revcloudevents.Extractor())
//	err := c.StartReceiver(ctx, revcloudevents.Receiver(g, apply))
//
// [Extractor] reads the key from source and subject and the revision from the
// sequence extension or the time attribute, as the HTTP middleware's
// [middleware.CloudEvents] does. [Receiver] answers each event with the
// protocol result [revguard.Disposition] calls for. Over HTTP that result
// sets the response status, which tells the sender both whether to retry
// and, for an acknowledged event, what the guard did:
//
//	applied             200 OK                   ACK
//	duplicate           208 Already Reported     ACK
//	stale               204 No Content           ACK
//	dead-lettered       202 Accepted             ACK (taken by revguard.WithDeadLetter)
//	in flight, gap      429 Too Many Requests    NACK, retried by an SDK sender with retries
//	handler, store      503 Service Unavailable  NACK, retried likewise
//	bad key, revision   400 Bad Request          NACK, never retried; so is a Permanent
//	                                             handler error without WithDeadLetter
//
// A NACK's response body is the guard's error. 429 and 503 are statuses
// the SDK's HTTP sender retries by default when its context asks for
// retries (cloudevents.ContextWithRetriesExponentialBackoff), and 400 one
// it does not; the sender's backoff is the delay, since a receiver's
// result cannot carry a Retry-After. Other protocols see only the ACK or
// the NACK.
//
// The SDK answers a request that is not a valid CloudEvent (no source, a
// malformed time) with 400 before the receiver runs. A sender made with
// cloudevents.NewClientHTTP stamps the time of sending on every event
// without one, so that an event without a sequence is ordered by when it
// was sent: give events a sequence, or the time of the change they carry.
//
// The SDK decides a few attributes before the extractor sees them, so an
// event that reaches both this receiver and middleware.CloudEvents can key
// differently in corner cases: the SDK trims spaces around the subject and
// reads an empty subject as none; it does not percent-decode binary-mode
// ce- headers (the middleware does, as the HTTP binding says), so a source
// or subject holding '%' differs; and it decodes an integer sequence in
// structured JSON as an int32, refusing larger ones. Send sequences as
// strings, and keep one path per event stream.
//
// On the sending side,
// [Outcome] reads the outcome from the result of client.Send or
// client.Request:
//
//	res := sender.Send(ctx, e)
//	if out, ok := revcloudevents.Outcome(res); ok && out == revguard.Stale { ... }
package revcloudevents
