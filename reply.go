package revguard

import (
	"context"
)

// A ReplyHandler is a [Handler] that also returns what it produced (an HTTP
// response, a computed result), for the store to keep with the revision
// the event applies.
type ReplyHandler[T any] func(ctx context.Context, event T) (reply []byte, err error)

// HandleReply is [Guard.Handle] for a handler whose reply is kept with the
// revision it applies, so that a duplicate delivery of the event is answered
// with the reply of the first: [Applied] returns the reply h returned;
// [Duplicate] the reply stored with the revision; [Stale], and every error,
// nil.
//
// The reply is recorded in the commit's own write, so no crash separates it
// from the revision. That takes a store that implements [Payloads] and the
// [Claim] mode ([AtMostOnce] and [Transactional] record the revision apart from
// the handler's end); elsewhere, and for a reply above [MaxPayload], the
// revision is recorded without a reply and a duplicate gets nil. A
// duplicate also gets nil when the revision was applied by Handle, or by
// a newer reply-less commit. Reading a duplicate's reply costs one more
// store call.
func (g *Guard[T]) HandleReply(ctx context.Context, event T, h ReplyHandler[T]) (Outcome, []byte, error) {
	if h == nil {
		out, err := g.Handle(ctx, event, nil)
		return out, nil, err
	}
	if g.cfg.shadow {
		var reply []byte
		out, err := g.handleShadow(ctx, event, func(ctx context.Context, e T) (err error) {
			reply, err = h(ctx, e)
			return err
		})
		return out, reply, err
	}
	ctx, start, end := g.watchStart(ctx, false, 1)
	if end != nil {
		defer end()
	}
	var one [1]job[T]
	j := &one[0]
	var reply []byte
	if g.prepare(j, event) {
		g.decide(ctx, one[:], func(ctx context.Context, e T) error {
			r, err := h(ctx, e)
			if err == nil {
				reply = r
				if g.kept != nil && len(r) > 0 && CheckPayload(r) == nil {
					j.reply = r // committed with the revision
				}
			}
			return err
		})
	}
	if j.out == Duplicate && j.err == nil && g.kept != nil {
		reply, j.err = g.storedReply(ctx, j)
		if j.err != nil {
			j.out = 0
		}
	}
	g.record(ctx, j.decision(), start)
	if j.out != Applied && j.out != Duplicate {
		reply = nil
	}
	return j.out, reply, j.err
}

// storedReply reads the reply kept with a duplicate's revision. The entity
// may have moved on since the claim saw it: a reply is the duplicate's only
// while its revision is still the applied one.
func (g *Guard[T]) storedReply(ctx context.Context, j *job[T]) ([]byte, error) {
	start := g.storeStart()
	st, reply, err := g.kept.PeekPayload(ctx, j.req.Namespace, j.req.Key)
	g.storeCall(ctx, "peek", 1, start, err)
	if err != nil {
		return nil, storeError("peek", j.req.Key, j.req.Rev, err)
	}
	if !st.Exists || st.Applied != j.req.Rev {
		return nil, nil
	}
	return reply, nil
}
