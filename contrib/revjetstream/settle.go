package revjetstream

import (
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/revguard/revguard"
	"github.com/revguard/revguard/internal/text"
)

// settle tells JetStream what became of msg, given the guard's error, and
// returns that error joined with the settling call's own.
func (c *config) settle(msg jetstream.Msg, err error) error {
	action, delay := revguard.Disposition(err)
	var call string
	var ackErr error
	switch action {
	case revguard.Ack:
		call, ackErr = "Ack", msg.Ack()
	case revguard.RetryLater:
		if c.retryDelay > 0 {
			delay = c.retryDelay
		}
		call, ackErr = "NakWithDelay", msg.NakWithDelay(delay)
	case revguard.DeadLetter:
		call, ackErr = "TermWithReason", msg.TermWithReason(err.Error())
	case revguard.Redeliver:
		if c.redeliver > 0 {
			call, ackErr = "NakWithDelay", msg.NakWithDelay(c.redeliver)
		} else {
			call, ackErr = "Nak", msg.Nak()
		}
	}
	if ackErr == nil {
		return err
	}
	ackErr = fmt.Errorf("revjetstream: %s of a message on %s: %w", call, text.Quote(msg.Subject()), ackErr)
	if err == nil {
		return ackErr
	}
	return errors.Join(err, ackErr)
}
