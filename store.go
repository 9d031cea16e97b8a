package revguard

import (
	"context"
	"encoding/hex"
	"time"
)

// Store keeps, for each (namespace, key), the applied revision and at most
// one claim, and decides atomically whether a revision applies. Backends
// implement it; users only pass one to [New].
//
// The contract, which backendtest.Run checks for every backend:
//
//   - An entity with nothing applied is below every revision: under [Latest]
//     ordering revision 0 applies on it. No store uses 0 to mean "nothing".
//   - Decisions are exact over the whole uint64 range.
//   - Every call is atomic: concurrent calls, from any number of processes
//     sharing the store, behave as if run one after another.
//   - Every call is safe to retry after a lost reply and then answers as the
//     first call did: a [Store.Claim] retried with the same token answers
//     [Granted] while that claim lives, an advance retried with the same
//     token answers Granted, a [Store.Commit] retried answers nil, a
//     [Store.Release] retried answers nil. Nothing retried turns a granted
//     event into a [Duplicate] or [Stale].
//   - Invalid input is refused before anything is stored. Stores may trust
//     keys checked by [CheckKey] and namespaces of at most 255 bytes; a
//     store-specific limit is an error, never a truncation.
//   - A cancelled or expired context makes a call return the context's error
//     (wrapped) unless it had already taken effect.
//   - An error other than those named here means the store could not be
//     reached or gave an answer it could not read: the caller does not know
//     whether the call took effect, and retries.
type Store interface {
	// Claim decides req against the entity's applied revision (see
	// Request.Decide) and, when it is Granted, either claims it for
	// req.Lease under req.Token or, with req.Advance, records req.Rev as
	// applied at once (the one-step advance of AtMostOnce).
	//
	// The verdict against the applied revision comes first: Dup, Old, Gap
	// and TooFar are answered whoever holds a claim (a drop is correct
	// either way, and a refusal changes nothing). Only a request that would
	// be Granted meets the claim: a live claim by another token, or by
	// req.Token on another revision, answers Busy. An expired claim is
	// ignored and replaced. A live claim by req.Token on req.Rev answers
	// Granted again and extends the lease (a retried call). An advance whose
	// token is the one that recorded the applied revision, with req.Rev
	// applied, answers Granted (a retry); Set and Forget end that. A store
	// whose client sends a call again after a lost reply (go-redis does)
	// must also answer Granted to an advance retried after newer revisions
	// were applied, for at least the three recordings before the last;
	// other stores may answer Old there. Reply.State is the entity before
	// this call. [Request.DecideClaim] is this decision in Go, for stores
	// that decide in Go.
	Claim(ctx context.Context, req Request) (Reply, error)

	// ClaimBatch is Claim for many requests, in as few round trips as the
	// backend allows. It returns one Reply per request, in order. Requests
	// name distinct entities. A request's own problem goes in its Reply;
	// the error is for a failure of the whole call.
	ClaimBatch(ctx context.Context, reqs []Request) ([]Reply, error)

	// Renew extends the claim held by token on (ns, key) to lease from now.
	// It returns an error wrapping ErrLeaseLost if token does not hold a live
	// claim there.
	Renew(ctx context.Context, ns, key string, token Token, lease time.Duration) error

	// Commit records the claimed revision as applied and removes the claim,
	// if token holds a live claim on (ns, key). A commit whose token already
	// recorded the applied revision returns nil (a retry). Anything else
	// returns an error wrapping ErrLeaseLost and changes nothing.
	Commit(ctx context.Context, ns, key string, token Token) error

	// CommitBatch is Commit for many entities in as few round trips as the
	// backend allows: one error per commit (nil or ErrLeaseLost), in order.
	CommitBatch(ctx context.Context, commits []Commit) ([]error, error)

	// Release removes the claim if token holds it, so a redelivery can claim
	// the revision again at once. Releasing a claim that is not token's,
	// expired or absent does nothing and returns nil.
	Release(ctx context.Context, ns, key string, token Token) error

	// Peek reads the entity without changing it.
	Peek(ctx context.Context, ns, key string) (State, error)

	// Set makes rev the applied revision, lower or higher than before, and
	// drops any claim (its holder's commit then fails with ErrLeaseLost). It
	// is the repair for an entity poisoned by a bogus revision.
	Set(ctx context.Context, ns, key string, rev Revision) error

	// Forget removes the entity: nothing applied, no claim.
	Forget(ctx context.Context, ns, key string) error
}

// Transactor is a [Store] that can advance a revision inside a transaction of
// its own and run the handler in it (the [Transactional] mode).
type Transactor interface {
	Store
	// Transact begins a transaction, advances req in it (req.Advance is
	// set) and, if Granted, runs fn with a context carrying the transaction;
	// it commits when fn returns nil and rolls back otherwise, also when fn
	// panics (the panic goes on). The concurrent delivery of the same entity
	// waits on the transaction's row lock, then sees its outcome.
	Transact(ctx context.Context, req Request, fn func(context.Context) error) (Reply, error)
}

// Expiring is implemented by stores that may forget an entity on their own,
// such as redisstore with WithTTL. [New] refuses [WithDropCache] over one whose
// [Expiring.Expires] reports true: an expired entity applies revisions the
// cache would drop.
type Expiring interface {
	// Expires reports whether the store, as configured, forgets entities.
	Expires() bool
}

// InProcess is implemented by stores that live in the guard's own process,
// such as memstore. A claim there cannot outlive the process that holds it,
// so the guard keeps no lease for it: it sends claims with Lease 0, which
// such a store holds until they are committed or released, and it sends
// each call on its own, since waiting to share a call costs more than the
// call. A store returning true must accept Lease 0.
type InProcess interface {
	// InProcess reports whether the store lives in this process, so that
	// a claim with Lease 0 holds until committed or released.
	InProcess() bool
}

// Token identifies one claim. The guard makes a fresh one per delivery.
type Token [16]byte

// String returns the token in hex, the form stores keep it in.
func (t Token) String() string { return hex.EncodeToString(t[:]) }

// Request is one decision a [Store] makes.
type Request struct {
	Namespace string        // the guard's namespace (WithNamespace); with Key, names the entity
	Key       string        // valid by CheckKey: the guard checks it before any store call
	Rev       Revision      // the event's revision
	Token     Token         // fresh per delivery; Renew, Commit and Release of the claim present it
	Lease     time.Duration // how long a claim lives without renewal; 0 (InProcess stores only): until committed or released
	Advance   bool          // record Rev as applied at once instead of claiming it

	Sequential bool     // only applied+1 applies (First on an empty entity)
	First      Revision // the first revision of a Sequential entity
	MaxStep    uint64   // when not 0, refuse revisions more than MaxStep above the applied one
}

// Verdict is a [Store]'s answer to a [Request].
type Verdict uint8

const (
	Granted Verdict = iota + 1 // claimed, or advanced
	Dup                        // equal to the applied revision
	Old                        // below the applied revision (or below First)
	Busy                       // another token holds a live claim
	Gap                        // Sequential: ahead of applied+1
	TooFar                     // more than MaxStep above the applied revision
)

var verdictNames = [...]string{"", "granted", "duplicate", "stale", "in flight", "gap", "too far"}

// String returns the verdict in words ("in flight"), for test failures and
// logs.
func (v Verdict) String() string {
	if int(v) < len(verdictNames) && v != 0 {
		return verdictNames[v]
	}
	return "Verdict(" + Revision(v).String() + ")"
}

// Reply is a [Store]'s answer to a [Request] and what it saw. ([Result] is
// [Guard.HandleBatch]'s per-event answer.)
type Reply struct {
	Verdict Verdict // Granted, or why not
	State   State   // the entity before the call
}

// State is what a [Store] holds for one entity.
type State struct {
	Applied Revision // meaningful only when Exists
	Exists  bool     // something has been applied
}

// Commit names one claim to commit.
type Commit struct {
	Namespace string // as in the claim's Request
	Key       string // as in the claim's Request
	Token     Token  // the claim's: a commit by any other token changes nothing
}

// Decide returns the verdict for r against state s, not counting claims.
// Stores call [Request.DecideClaim], which starts here, or do the same in
// their own language, so that every backend decides alike.
func (r *Request) Decide(s State) Verdict {
	if !s.Exists {
		if r.Sequential && r.Rev != r.First {
			if r.Rev < r.First {
				return Old
			}
			return Gap
		}
		return Granted
	}
	switch {
	case r.Rev == s.Applied:
		return Dup
	case r.Rev < s.Applied:
		return Old
	case r.Sequential && r.Rev-s.Applied > 1:
		return Gap
	case r.MaxStep != 0 && uint64(r.Rev-s.Applied) > r.MaxStep:
		return TooFar
	}
	return Granted
}

// DecideClaim returns the verdict [Store.Claim] gives r on an entity in
// state s, and whether granting it changes the entity. recordedBy is the
// token whose commit or advance recorded s.Applied, nil when none did
// (after [Store.Set]) or nothing is applied; claim is the claim in force, nil
// when there is none or its lease has run out (its Left is not read).
//
// It is [Request.Decide] with what the Store contract adds about claims: an
// advance by the token that recorded r.Rev is a retry, [Granted] with nothing
// to change; otherwise only a request Decide grants meets the claim, and a
// claim in force by another token, or by r.Token on another revision,
// answers [Busy]. On Granted with change, the store claims r.Rev for r.Token
// (a retried claim gets its lease extended) or, with r.Advance, records
// r.Rev as applied and drops the claim. A store that also keeps older
// recordings (see Store.Claim) checks those before calling it.
func (r *Request) DecideClaim(s State, recordedBy *Token, claim *ClaimState) (v Verdict, change bool) {
	if r.Advance && s.Exists && s.Applied == r.Rev && recordedBy != nil && *recordedBy == r.Token {
		return Granted, false
	}
	if v = r.Decide(s); v != Granted {
		return v, false
	}
	if claim != nil && (claim.Token != r.Token || claim.Rev != r.Rev) {
		return Busy, false
	}
	return Granted, true
}
