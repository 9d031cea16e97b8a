package proof

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/revguard/revguard"
)

// history records store calls with their intervals, for porcupine.
type history struct {
	t0     time.Time
	ns     string
	tokens [8]byte // this history's tokens start with these bytes

	mu     sync.Mutex
	ops    []porcupine.Operation
	errors map[string]int // why calls' outcomes are unknown

	hidden   int    // calls whose context expired and whose error does not wrap it
	hiddenEx string // one of their errors
}

func newHistory(ns string) *history {
	h := &history{t0: time.Now(), ns: ns}
	_, _ = rand.Read(h.tokens[:])
	return h
}

// now reads the monotonic clock, in nanoseconds since the history began.
func (h *history) now() int64 { return int64(time.Since(h.t0)) }

// token returns the token numbered n.
func (h *history) token(n int) revguard.Token {
	var t revguard.Token
	copy(t[:8], h.tokens[:])
	binary.BigEndian.PutUint64(t[8:], uint64(n))
	return t
}

// do runs in on s, records it as client's, and returns the answer.
func (h *history) do(ctx context.Context, s revguard.Store, client int, in input) output {
	in.call = h.now()
	out, err := h.exec(ctx, s, in)
	in.ret = h.now()
	h.mu.Lock()
	if err != nil && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		// The contract: an expired context makes a call return the
		// context's error, wrapped.
		h.hidden++
		h.hiddenEx = errorClass(err)
	}
	if out.unknown {
		in.ret = never
		if h.errors == nil {
			h.errors = map[string]int{}
		}
		h.errors[errorClass(err)]++
	}
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Call: in.call, Output: out, Return: in.ret})
	h.mu.Unlock()
	return out
}

// errorClass names an error for a count: its kind, not its details.
func errorClass(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline exceeded"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	msg := err.Error()
	if len(msg) > 80 {
		msg = msg[:80] + "..."
	}
	return msg
}

// exec makes the store call in names. Any error but ErrLeaseLost from
// Commit and Renew leaves the outcome unknown.
func (h *history) exec(ctx context.Context, s revguard.Store, in input) (output, error) {
	tok := h.token(in.tok)
	switch in.kind {
	case opClaim, opAdvance:
		r, err := s.Claim(ctx, revguard.Request{
			Namespace: h.ns, Key: in.key, Rev: in.rev, Token: tok, Lease: time.Duration(in.lease),
			Advance: in.kind == opAdvance, Sequential: in.seq, First: in.first, MaxStep: in.maxStep,
		})
		if err != nil {
			return output{unknown: true}, err
		}
		return output{verdict: r.Verdict, applied: r.State.Applied, exists: r.State.Exists}, nil
	case opCommit, opRenew:
		var err error
		if in.kind == opCommit {
			err = s.Commit(ctx, h.ns, in.key, tok)
		} else {
			err = s.Renew(ctx, h.ns, in.key, tok, time.Duration(in.lease))
		}
		switch {
		case err == nil:
			return output{}, nil
		case errors.Is(err, revguard.ErrLeaseLost):
			return output{lost: true}, nil
		}
		return output{unknown: true}, err
	case opRelease:
		if err := s.Release(ctx, h.ns, in.key, tok); err != nil {
			return output{unknown: true}, err
		}
		return output{}, nil
	case opPeek:
		st, err := s.Peek(ctx, h.ns, in.key)
		if err != nil {
			return output{unknown: true}, err
		}
		return output{applied: st.Applied, exists: st.Exists}, nil
	case opSet:
		if err := s.Set(ctx, h.ns, in.key, in.rev); err != nil {
			return output{unknown: true}, err
		}
		return output{}, nil
	case opForget:
		if err := s.Forget(ctx, h.ns, in.key); err != nil {
			return output{unknown: true}, err
		}
		return output{}, nil
	}
	panic("history: unknown op")
}

// doBatch runs ins, claims on distinct keys, as one ClaimBatch call and
// records each as an operation of its own over the call's interval: a batch
// decides each entity atomically, not all of them together.
func (h *history) doBatch(ctx context.Context, s revguard.Store, client int, ins []input) []output {
	reqs := make([]revguard.Request, len(ins))
	for i, in := range ins {
		reqs[i] = revguard.Request{
			Namespace: h.ns, Key: in.key, Rev: in.rev, Token: h.token(in.tok), Lease: time.Duration(in.lease),
			Advance: in.kind == opAdvance, Sequential: in.seq, First: in.first, MaxStep: in.maxStep,
		}
	}
	call := h.now()
	res, err := s.ClaimBatch(ctx, reqs)
	if err == nil && len(res) != len(reqs) {
		err = errors.New("ClaimBatch answered the wrong number of replies")
	}
	outs := make([]output, len(ins))
	for i := range ins {
		if err != nil {
			outs[i] = output{unknown: true}
		} else {
			outs[i] = output{verdict: res[i].Verdict, applied: res[i].State.Applied, exists: res[i].State.Exists}
		}
	}
	h.record(client, ins, outs, call, err)
	return outs
}

// doCommitBatch is doBatch for CommitBatch.
func (h *history) doCommitBatch(ctx context.Context, s revguard.Store, client int, ins []input) []output {
	commits := make([]revguard.Commit, len(ins))
	for i, in := range ins {
		commits[i] = revguard.Commit{Namespace: h.ns, Key: in.key, Token: h.token(in.tok)}
	}
	call := h.now()
	errs, err := s.CommitBatch(ctx, commits)
	if err == nil && len(errs) != len(commits) {
		err = errors.New("CommitBatch answered the wrong number of errors")
	}
	outs := make([]output, len(ins))
	for i := range ins {
		switch {
		case err != nil:
			outs[i] = output{unknown: true}
		case errs[i] == nil:
		case errors.Is(errs[i], revguard.ErrLeaseLost):
			outs[i].lost = true
		default:
			outs[i] = output{unknown: true}
		}
	}
	h.record(client, ins, outs, call, err)
	return outs
}

func (h *history) record(client int, ins []input, outs []output, call int64, err error) {
	ret := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, in := range ins {
		in.call, in.ret = call, ret
		if outs[i].unknown {
			in.ret = never
			if h.errors == nil {
				h.errors = map[string]int{}
			}
			if err == nil {
				err = errors.New("an entity's own error in a batch")
			}
			h.errors[errorClass(err)]++
		}
		h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Call: in.call, Output: outs[i], Return: in.ret})
	}
}
