package revguard

import (
	"context"
	"errors"
	"fmt"
)

// MaxPayload is the largest payload, in bytes, that [Payloads.CommitPayload]
// takes: room for a 64 KiB response body with 4 KiB of status line and
// headers, the replay the middleware keeps for a duplicate. It bounds what
// one commit adds to a store's write and to every entity's memory in Redis,
// and each store keeps it in one value (on MySQL, a MEDIUMBLOB: a BLOB holds
// 64 KiB, not quite enough).
const MaxPayload = 64<<10 + 4<<10

// ErrPayloadTooLarge is returned, wrapped with the size, by
// [Payloads.CommitPayload] for a payload above [MaxPayload], before anything
// is stored.
var ErrPayloadTooLarge = errors.New("revguard: payload too large")

// Payloads is implemented by stores that can keep a small payload with an
// applied revision, written by the same atomic write that records the
// revision, so that no crash can leave one without the other: the store
// side of answering a duplicate delivery with what the first one produced
// (an HTTP response to replay). The guard does not call it yet. memstore,
// redisstore and sqlstore implement it.
//
// A payload belongs to the recording of one revision by one commit: it is
// visible from that commit on, never during the claim before it, and only
// for as long as that revision stays applied by that commit. Whatever
// records a revision otherwise ([Store.Commit] without a payload, the advance
// of [AtMostOnce], [Store.Set]) or Forget ends it: [Payloads.PeekPayload]
// never returns a payload with a revision it was not committed with. A
// refused claim changes nothing, the payload included. backendtest.Run checks
// all of it for stores that implement Payloads.
type Payloads interface {
	// CommitPayload is Commit that also stores payload with the revision
	// it records. A commit retried with the same token after it took effect
	// returns nil and changes nothing: the payload stays the one the first
	// call stored. A payload above MaxPayload returns an error wrapping
	// ErrPayloadTooLarge and changes nothing; an empty one is no payload
	// (CommitPayload is then Commit).
	CommitPayload(ctx context.Context, ns, key string, token Token, payload []byte) error

	// PeekPayload is Peek that also returns the payload stored with the
	// applied revision, nil when there is none. The caller owns the slice.
	PeekPayload(ctx context.Context, ns, key string) (State, []byte, error)
}

// CheckPayload returns nil if a [Payloads] store must keep payload, and
// otherwise an error wrapping [ErrPayloadTooLarge]. Stores call it before
// anything is sent.
func CheckPayload(payload []byte) error {
	if len(payload) > MaxPayload {
		return fmt.Errorf("%w: %d bytes, above the limit of %d (MaxPayload)", ErrPayloadTooLarge, len(payload), MaxPayload)
	}
	return nil
}
