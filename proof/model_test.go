package proof

import (
	"fmt"
	"hash/fnv"
	"math"
	"strings"

	"github.com/anishathalye/porcupine"
	"github.com/revguard/revguard"
)

// The model is one entity as the contract on revguard.Store describes it: an
// applied revision (or nothing), the token that recorded it, and at most one
// claim with a lease. It is written from that contract alone; it does not
// call Request.Decide or any store's code, so a mistake shared by the
// library and its stores shows up as a disagreement here.
//
// Time enters the model only through leases. Every call carries the
// interval in which it ran ([call, ret], from the test's monotonic clock;
// ret is never for a call whose outcome is unknown), so a claim granted by a
// call is known to end somewhere in [call+lease, ret+lease]. A later call
// that certainly ran before that window sees the claim live, one that
// certainly ran after it sees it expired, and one that overlaps it may see
// either: the model then follows both. With leases far longer than a run,
// no window is ever uncertain and time plays no part.

// opKind names a store call.
type opKind uint8

const (
	opClaim   opKind = iota + 1 // Claim without Advance
	opAdvance                   // Claim with Advance (AtMostOnce, Transactional)
	opCommit
	opRelease
	opRenew
	opPeek
	opSet
	opForget
)

var opNames = [...]string{"", "claim", "advance", "commit", "release", "renew", "peek", "set", "forget"}

func (k opKind) String() string { return opNames[k] }

// never is the return time of a call whose outcome is unknown: porcupine
// may then place it anywhere after its call, including after every other
// call, which is the same as never having taken effect.
const never = math.MaxInt64

// input is one store call.
type input struct {
	kind    opKind
	key     string
	tok     int // the token, by number (see token); 0 for none
	rev     revguard.Revision
	seq     bool
	first   revguard.Revision
	maxStep uint64
	lease   int64 // nanoseconds
	call    int64 // nanoseconds since the history began
	ret     int64 // never when the outcome is unknown
}

// output is what the call answered.
type output struct {
	unknown bool             // an error: the call may or may not have taken effect
	verdict revguard.Verdict // claim and advance
	lost    bool             // commit and renew: ErrLeaseLost
	applied revguard.Revision
	exists  bool // claim and advance: the entity before the call; peek: the entity
}

// entity is the model's state for one key.
type entity struct {
	applied revguard.Revision
	exists  bool
	last    int       // the token that recorded applied (0: none, or Set)
	prior   [3]record // the recordings advances replaced, newest first
	claimed bool
	crev    revguard.Revision
	ctok    int
	expMin  int64 // the claim's lease ends no earlier than this
	expMax  int64 // and no later than this
}

// record is one recording of an applied revision: by which token.
type record struct {
	tok int
	rev revguard.Revision
}

// slack widens lease windows for clocks that are not the test's: a server's
// clock read in whole milliseconds, a wall clock slewed against the
// monotonic one.
type leaseModel struct{ slack int64 }

func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// branches returns the states the entity may be in when call in runs: the
// claim live, expired, or either when in's interval overlaps the claim's
// end.
func (m leaseModel) branches(s entity, in input) []entity {
	if !s.claimed {
		return []entity{s}
	}
	expired := s
	expired.claimed, expired.crev, expired.ctok, expired.expMin, expired.expMax = false, 0, 0, 0, 0
	switch {
	case in.ret != never && addSat(in.ret, m.slack) < s.expMin:
		return []entity{s}
	case s.expMax != never && in.call > addSat(s.expMax, m.slack):
		return []entity{expired}
	}
	return []entity{s, expired}
}

// decide is the contract's decision, not counting claims: Granted, Dup,
// Old, Gap or TooFar.
func decide(s entity, in input) revguard.Verdict {
	if !s.exists {
		if in.seq && in.rev != in.first {
			if in.rev < in.first {
				return revguard.Old
			}
			return revguard.Gap
		}
		return revguard.Granted // nothing applied: below every revision, MaxStep unbounded
	}
	if in.rev == s.applied {
		return revguard.Dup
	}
	if in.rev < s.applied {
		return revguard.Old
	}
	step := uint64(in.rev - s.applied) // in.rev > s.applied, no overflow
	if in.seq && step != 1 {
		return revguard.Gap
	}
	if in.maxStep != 0 && step > in.maxStep {
		return revguard.TooFar
	}
	return revguard.Granted
}

// outcome is one answer a call may give and the state it leaves.
type outcome struct {
	out  output
	next entity
}

// apply returns every answer the contract allows for in on an entity whose
// claim, if any, is live (branches has already dropped an expired one).
func apply(s entity, in input) []outcome {
	before := output{applied: s.applied, exists: s.exists}
	with := func(v revguard.Verdict) output { o := before; o.verdict = v; return o }
	switch in.kind {
	case opClaim, opAdvance:
		// A retried advance: its token recorded the applied revision.
		if in.kind == opAdvance && in.tok != 0 && s.exists && s.applied == in.rev && s.last == in.tok {
			return []outcome{{with(revguard.Granted), s}}
		}
		// An advance retried after newer ones overtook it: redisstore
		// (whose client sends calls again) says granted, others may say
		// stale; neither changes anything.
		if in.kind == opAdvance && in.tok != 0 && s.exists && in.rev < s.applied {
			for _, r := range s.prior {
				if r.tok == in.tok && r.rev == in.rev {
					return []outcome{{with(revguard.Granted), s}, {with(revguard.Old), s}}
				}
			}
		}
		// The verdict against the applied revision comes first, whoever
		// holds a claim (store.go): a drop is correct either way, and a
		// refusal changes nothing.
		if v := decide(s, in); v != revguard.Granted {
			return []outcome{{with(v), s}}
		}
		n := s
		if s.claimed && (s.ctok != in.tok || s.crev != in.rev) {
			return []outcome{{with(revguard.Busy), s}}
		}
		if in.kind == opAdvance {
			if s.exists && s.last != 0 {
				n.prior = [3]record{{s.last, s.applied}, s.prior[0], s.prior[1]}
			}
			n.applied, n.exists, n.last = in.rev, true, in.tok
			n.claimed, n.crev, n.ctok, n.expMin, n.expMax = false, 0, 0, 0, 0
		} else { // a new claim, or the same token's retry extending its lease
			n.claimed, n.crev, n.ctok = true, in.rev, in.tok
			n.expMin, n.expMax = addSat(in.call, in.lease), addSat(in.ret, in.lease)
		}
		return []outcome{{with(revguard.Granted), n}}
	case opCommit:
		if s.claimed && s.ctok == in.tok {
			n := s
			n.applied, n.exists, n.last = s.crev, true, in.tok
			n.claimed, n.crev, n.ctok, n.expMin, n.expMax = false, 0, 0, 0, 0
			return []outcome{{output{}, n}}
		}
		if s.exists && s.last == in.tok {
			return []outcome{{output{}, s}} // a retried commit
		}
		return []outcome{{output{lost: true}, s}}
	case opRenew:
		if s.claimed && s.ctok == in.tok {
			n := s
			n.expMin, n.expMax = addSat(in.call, in.lease), addSat(in.ret, in.lease)
			return []outcome{{output{}, n}}
		}
		return []outcome{{output{lost: true}, s}}
	case opRelease:
		n := s
		if s.claimed && s.ctok == in.tok {
			n.claimed, n.crev, n.ctok, n.expMin, n.expMax = false, 0, 0, 0, 0
		}
		return []outcome{{output{}, n}}
	case opPeek:
		return []outcome{{before, s}}
	case opSet:
		return []outcome{{output{}, entity{applied: in.rev, exists: true}}}
	case opForget:
		return []outcome{{output{}, entity{}}}
	}
	panic(fmt.Sprintf("model: unknown op %d", in.kind))
}

// same reports whether a store's answer matches one the model allows. The
// applied revision counts only when something is applied.
func same(got, want output) bool {
	if got.verdict != want.verdict || got.lost != want.lost || got.exists != want.exists {
		return false
	}
	return !got.exists || got.applied == want.applied
}

// step returns every state the entity may be in after in answered out.
func (m leaseModel) step(s entity, in input, out output) []entity {
	var next []entity
	for _, b := range m.branches(s, in) {
		for _, o := range apply(b, in) {
			if out.unknown || same(out, o.out) {
				next = append(next, o.next)
			}
		}
	}
	return next
}

// porcupineModel is the model as porcupine takes it, partitioned by key.
func (m leaseModel) porcupineModel() porcupine.Model {
	nm := porcupine.NondeterministicModel{
		Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
			byKey := map[string][]porcupine.Operation{}
			var order []string
			for _, op := range h {
				k := op.Input.(input).key
				if _, ok := byKey[k]; !ok {
					order = append(order, k)
				}
				byKey[k] = append(byKey[k], op)
			}
			out := make([][]porcupine.Operation, 0, len(order))
			for _, k := range order {
				out = append(out, byKey[k])
			}
			return out
		},
		PartitionEvent: func(h []porcupine.Event) [][]porcupine.Event {
			keyOf := map[int]string{}
			byKey := map[string][]porcupine.Event{}
			var order []string
			for _, e := range h {
				if e.Kind == porcupine.CallEvent {
					keyOf[e.Id] = e.Value.(input).key
				}
				k := keyOf[e.Id]
				if _, ok := byKey[k]; !ok {
					order = append(order, k)
				}
				byKey[k] = append(byKey[k], e)
			}
			out := make([][]porcupine.Event, 0, len(order))
			for _, k := range order {
				out = append(out, byKey[k])
			}
			return out
		},
		Init: func() []any { return []any{entity{}} },
		Step: func(state, in, out any) []any {
			next := m.step(state.(entity), in.(input), out.(output))
			res := make([]any, len(next))
			for i, n := range next {
				res[i] = n
			}
			return res
		},
		Hash: func(state any) uint64 {
			h := fnv.New64a()
			fmt.Fprint(h, state)
			return h.Sum64()
		},
		DescribeOperation: func(in, out any) string { return describe(in.(input), out.(output)) },
		DescribeState: func(state any) string {
			s := state.(entity)
			var b strings.Builder
			if s.exists {
				fmt.Fprintf(&b, "applied %d by t%d", s.applied, s.last)
			} else {
				b.WriteString("nothing applied")
			}
			if s.claimed {
				fmt.Fprintf(&b, "; claim %d by t%d", s.crev, s.ctok)
			}
			return b.String()
		},
	}
	return nm.ToModel()
}

func describe(in input, out output) string {
	var b strings.Builder
	b.WriteString(in.kind.String())
	switch in.kind {
	case opClaim, opAdvance:
		fmt.Fprintf(&b, "(t%d, %d", in.tok, in.rev)
		if in.seq {
			fmt.Fprintf(&b, ", seq from %d", in.first)
		}
		if in.maxStep != 0 {
			fmt.Fprintf(&b, ", maxstep %d", in.maxStep)
		}
		b.WriteString(")")
	case opCommit, opRelease, opRenew:
		fmt.Fprintf(&b, "(t%d)", in.tok)
	case opSet:
		fmt.Fprintf(&b, "(%d)", in.rev)
	}
	b.WriteString(" -> ")
	switch {
	case out.unknown:
		b.WriteString("?")
	case in.kind == opClaim || in.kind == opAdvance:
		fmt.Fprintf(&b, "%s, was %s", out.verdict, stateString(out.applied, out.exists))
	case in.kind == opPeek:
		b.WriteString(stateString(out.applied, out.exists))
	case out.lost:
		b.WriteString("lease lost")
	default:
		b.WriteString("ok")
	}
	return b.String()
}

func stateString(r revguard.Revision, exists bool) string {
	if !exists {
		return "nothing"
	}
	return r.String()
}
