package revguard

import (
	"context"
	"time"
)

// Inspector is implemented by stores that can show an operator what they
// hold, beyond [Store.Peek]: the claim in force, and every entity of a
// namespace. The revguard command (cmd/revguard) uses it for get, scan and
// watch. memstore, redisstore and sqlstore implement it.
type Inspector interface {
	// Inspect reads one entity and the claim in force on it, if any,
	// without changing anything. An entity the store knows nothing of
	// returns an Entity with Exists false and no Claim, and a nil error.
	Inspect(ctx context.Context, ns, key string) (Entity, error)

	// Scan calls fn for each entity of namespace ns whose key matches
	// match, a path.Match pattern ("" matches every key), in no particular
	// order. It reads a bounded page at a time (SCAN in Redis, a keyset-
	// paginated query in SQL), so that it never blocks the server; an
	// entity changed during the scan may be reported with either state, or
	// twice. It stops at the first error fn returns and returns it; a bad
	// pattern is an error before anything is read.
	Scan(ctx context.Context, ns, match string, fn func(Entity) error) error
}

// Entity is what an [Inspector] reports of one entity.
type Entity struct {
	Key string // exactly as the guard sent it: every store round-trips a valid key
	State
	Claim *ClaimState // the claim in force; nil when there is none or it expired
}

// ClaimState is a claim in force on an entity: a delivery whose handler is
// running, or whose process died less than a lease ago.
type ClaimState struct {
	Rev   Revision      // the revision claimed
	Token Token         // the claim's holder
	Left  time.Duration // lease left; 0 when held until committed or released (InProcess stores)
}
