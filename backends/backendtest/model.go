package backendtest

import (
	"slices"

	"github.com/revguard/revguard"
)

// model is the Store contract written out plainly, for claims that never
// expire: the differential test holds every store to it. It is kept apart
// from Request.Decide and Request.DecideClaim on purpose, so that a mistake
// there is not copied.
type model struct {
	entities map[string]*modelEntity
}

type modelEntity struct {
	applied    revguard.Revision
	exists     bool
	recordedBy revguard.Token // whose commit or advance made applied, when recorded
	recorded   bool           // false after Set: no token recorded applied

	claimed  bool
	holder   revguard.Token
	claimRev revguard.Revision

	prior []modelRecord // the recordings advances replaced, newest first, at most three
}

type modelRecord struct {
	token revguard.Token
	rev   revguard.Revision
}

func newModel() *model { return &model{entities: map[string]*modelEntity{}} }

func (m *model) entity(key string) *modelEntity {
	e := m.entities[key]
	if e == nil {
		e = &modelEntity{}
		m.entities[key] = e
	}
	return e
}

func (e *modelEntity) state() revguard.State {
	if !e.exists {
		return revguard.State{}
	}
	return revguard.State{Applied: e.applied, Exists: true}
}

// claim returns the state before req and the verdicts the contract allows.
// Where it allows two, both change nothing.
func (m *model) claim(req revguard.Request) (revguard.State, []revguard.Verdict) {
	e := m.entity(req.Key)
	before := e.state()

	// An advance repeated by the token that made it is a retry.
	if req.Advance && e.exists && e.recorded && e.applied == req.Rev && e.recordedBy == req.Token {
		return before, []revguard.Verdict{granted}
	}
	// So is one that newer advances overtook: a store whose client sends
	// calls again must say granted, another may say stale. Neither changes
	// anything.
	if req.Advance && e.exists && req.Rev < e.applied && slices.Contains(e.prior, modelRecord{req.Token, req.Rev}) {
		return before, []revguard.Verdict{granted, old}
	}

	var v revguard.Verdict
	switch {
	case !e.exists && req.Sequential && req.Rev < req.First:
		v = old
	case !e.exists && req.Sequential && req.Rev > req.First:
		v = gap
	case !e.exists:
		v = granted // no step bound on an empty entity
	case req.Rev == e.applied:
		v = dup
	case req.Rev < e.applied:
		v = old
	case req.Sequential && req.Rev != e.applied+1:
		v = gap
	case req.MaxStep != 0 && uint64(req.Rev)-uint64(e.applied) > req.MaxStep:
		v = tooFar
	default:
		v = granted
	}

	// The verdict against the applied revision comes first, whoever holds
	// a claim: only a request that would be granted meets the claim. One
	// token names one claim: holding revision r does not let it claim
	// another.
	sameClaim := e.claimed && e.holder == req.Token && e.claimRev == req.Rev
	if v == granted && e.claimed && !sameClaim {
		return before, []revguard.Verdict{busy}
	}
	if v != granted {
		return before, []revguard.Verdict{v}
	}

	if req.Advance {
		if e.exists && e.recorded {
			e.prior = append([]modelRecord{{e.recordedBy, e.applied}}, e.prior[:min(len(e.prior), 2)]...)
		}
		e.applied, e.exists = req.Rev, true
		e.recordedBy, e.recorded = req.Token, true
		e.claimed = false
	} else {
		e.claimed, e.holder, e.claimRev = true, req.Token, req.Rev
	}
	return before, []revguard.Verdict{granted}
}

// commit reports whether the commit succeeds; false means ErrLeaseLost.
func (m *model) commit(key string, tok revguard.Token) bool {
	e := m.entity(key)
	if e.claimed && e.holder == tok {
		e.applied, e.exists = e.claimRev, true
		e.recordedBy, e.recorded = tok, true
		e.claimed = false
		return true
	}
	// A repeated commit of the revision this token recorded.
	return e.exists && e.recorded && e.recordedBy == tok
}

func (m *model) release(key string, tok revguard.Token) {
	e := m.entity(key)
	if e.claimed && e.holder == tok {
		e.claimed = false
	}
}

// renew reports whether tok holds the claim; false means ErrLeaseLost.
func (m *model) renew(key string, tok revguard.Token) bool {
	e := m.entity(key)
	return e.claimed && e.holder == tok
}

func (m *model) set(key string, rev revguard.Revision) {
	*m.entity(key) = modelEntity{applied: rev, exists: true}
}

func (m *model) forget(key string) {
	delete(m.entities, key)
}

func (m *model) peek(key string) revguard.State {
	return m.entity(key).state()
}
