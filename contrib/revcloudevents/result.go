package revcloudevents

import (
	"errors"
	"net/http"

	"github.com/cloudevents/sdk-go/v2/protocol"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/revguard/revguard"
)

// The HTTP statuses of acknowledged events, one per outcome, since a
// status is all of a 2xx response that client.Send hands back.
var ackStatus = map[revguard.Outcome]int{
	revguard.Applied:      http.StatusOK,
	revguard.Duplicate:    http.StatusAlreadyReported,
	revguard.Stale:        http.StatusNoContent,
	revguard.DeadLettered: http.StatusAccepted,
}

// result turns the guard's answer into a protocol result. It is an HTTP
// result so that the HTTP protocol answers with its status; every other
// protocol reads the ACK or NACK it wraps.
func result(out revguard.Outcome, err error) protocol.Result {
	action, _ := revguard.Disposition(err)
	switch action {
	case revguard.Ack:
		// The ACK receipt's message is empty, as a 204 response's body must be.
		return cehttp.NewResult(ackStatus[out], "%w", protocol.ResultACK)
	case revguard.RetryLater:
		return nack(http.StatusTooManyRequests, err)
	case revguard.DeadLetter:
		return nack(http.StatusBadRequest, err)
	}
	return nack(http.StatusServiceUnavailable, err)
}

// nack is a NACK whose message, the response body, is err's.
func nack(status int, err error) protocol.Result {
	return cehttp.NewResult(status, "%w", protocol.NewReceipt(false, "%w", err))
}

// Outcome returns what a [Receiver]'s guard did with an event, read from the
// result that client.Send or client.Request returned for it over HTTP. It
// returns false for a NACK, for an error that never reached the receiver,
// and for a result of another protocol. A receiver not built with Receiver
// that answers 200 reads as Applied.
func Outcome(result protocol.Result) (revguard.Outcome, bool) {
	// A sender with retries wraps the last attempt's result in a
	// RetriesResult, which does not unwrap.
	var retries *cehttp.RetriesResult
	if errors.As(result, &retries) {
		result = retries.Result
	}
	var r *cehttp.Result
	if !errors.As(result, &r) {
		return 0, false
	}
	for out, status := range ackStatus {
		if r.StatusCode == status {
			return out, true
		}
	}
	return 0, false
}
