package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/revguard/revguard"
)

// MySQL and SQLite decide in Go: a transaction locks the rows, reads them,
// and writes back the ones that change (the package documentation says
// why).

// row is one entity's row as a transaction read it, and, once a decision
// changed it, as it is to be written.
type row struct {
	found    bool              // the table has a row for the entity
	applied  revguard.Revision // meaningful when exists
	exists   bool              // a revision is applied
	by       revguard.Token    // the token that recorded applied, when hasBy
	hasBy    bool
	claimed  bool // a claim is recorded, live or not
	live     bool // the claim has not expired by the database's clock
	claimRev revguard.Revision
	claimTok revguard.Token
	lease    time.Duration // a claim written back lives this long from the database's now
}

func (r *row) state() revguard.State { return revguard.State{Applied: r.applied, Exists: r.exists} }

// decide is req's verdict on r, and whether granting it changes the row.
// PostgreSQL's statements decide the same in SQL, and call decide on the
// requests they wrote nothing for: to name the verdict, or to try again
// when the row has changed since.
func decide(req *revguard.Request, r *row) (revguard.Verdict, bool) {
	var by *revguard.Token
	if r.exists && r.hasBy {
		by = &r.by
	}
	var inForce *revguard.ClaimState
	if r.claimed && r.live {
		inForce = &revguard.ClaimState{Rev: r.claimRev, Token: r.claimTok}
	}
	return req.DecideClaim(r.state(), by, inForce)
}

// grant changes r as granting req does.
func grant(req *revguard.Request, r *row) {
	if req.Advance {
		r.applied, r.exists, r.by, r.hasBy, r.claimed = req.Rev, true, req.Token, true, false
		return
	}
	r.claimed, r.live, r.claimRev, r.claimTok, r.lease = true, true, req.Rev, req.Token, req.Lease
}

func (s *Store) lockClaim(ctx context.Context, tx *sql.Tx, reqs []revguard.Request, ents []entity, order []int, out []revguard.Reply) error {
	return s.mutate(ctx, tx, ents, order, func(i int, r *row) bool {
		req := &reqs[i]
		v, change := decide(req, r)
		out[i] = revguard.Reply{Verdict: v, State: r.state()}
		if change {
			grant(req, r)
		}
		return change
	})
}

func (s *Store) lockCommit(ctx context.Context, tx *sql.Tx, commits []revguard.Commit, ents []entity, order []int, out []error) error {
	return s.mutate(ctx, tx, ents, order, func(i int, r *row) bool {
		var recorded bool
		recorded, out[i] = commitRow(r, &commits[i])
		return recorded
	})
}

// commitRow commits c on r: it reports whether the commit records the
// claimed revision (a retried one does not), and ErrLeaseLost when the
// commit fails.
func commitRow(r *row, c *revguard.Commit) (bool, error) {
	switch {
	case r.claimed && r.live && r.claimTok == c.Token:
		r.applied, r.exists, r.by, r.hasBy, r.claimed = r.claimRev, true, c.Token, true, false
		return true, nil
	case r.exists && r.hasBy && r.by == c.Token:
		return false, nil // a retried commit: done already
	}
	return false, errLost(c.Key)
}

// chunk bounds the rows of one statement, under SQLite's and MySQL's
// limits on placeholders.
const chunk = 256

// mutate locks and reads the rows of ents, in order, calls change on each,
// and writes back those for which change returns true.
func (s *Store) mutate(ctx context.Context, tx *sql.Tx, ents []entity, order []int, change func(i int, r *row) bool) error {
	rows, err := s.lockRows(ctx, tx, ents, order)
	if err != nil {
		return err
	}
	var insert, update []int
	for _, i := range order {
		r := &rows[i]
		if !change(i, r) {
			continue
		}
		if r.found {
			update = append(update, i)
		} else {
			insert = append(insert, i)
		}
	}
	if err := s.writeRows(ctx, tx, ents, rows, insert, false); err != nil {
		return err
	}
	return s.writeRows(ctx, tx, ents, rows, update, true)
}

// lockRows reads the rows of ents, locked until tx ends: MySQL locks each
// row (or, for a missing one, the gap where it would go) with FOR UPDATE,
// in key order; SQLite takes the database's write lock first with a write
// that changes nothing, so that no other connection writes between this
// read and this transaction's writes.
func (s *Store) lockRows(ctx context.Context, tx *sql.Tx, ents []entity, order []int) ([]row, error) {
	rows := make([]row, len(ents))
	if s.d == SQLite {
		if _, err := tx.ExecContext(ctx, s.q.lock); err != nil {
			return nil, err
		}
	}
	for start := 0; start < len(order); start += chunk {
		part := order[start:min(start+chunk, len(order))]
		if err := s.readChunk(ctx, tx, ents, part, rows); err != nil {
			return nil, err
		}
	}
	return rows, nil
}

func (s *Store) readChunk(ctx context.Context, tx *sql.Tx, ents []entity, part []int, rows []row) error {
	var b strings.Builder
	args := make([]any, 0, 3*len(part))
	if s.d == SQLite {
		b.WriteString("WITH i(n, ns, k) AS (VALUES ")
		for j, i := range part {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?, ?)")
			args = append(args, i, ents[i].nsBytes(), ents[i].keyBytes())
		}
		b.WriteString(") SELECT i.n, t.applied, t.applied_token, t.claim_rev, t.claim_token, t.claim_until IS NOT NULL, " +
			"COALESCE(t.claim_until > strftime('%Y-%m-%d %H:%M:%f', 'now'), 0) FROM i JOIN ")
		b.WriteString(s.table)
		b.WriteString(" t ON t.namespace = i.ns AND t.entity_key = i.k")
	} else {
		b.WriteString("SELECT id, namespace, entity_key, applied, applied_token, claim_rev, claim_token, claim_until IS NOT NULL, " +
			"COALESCE(claim_until > UTC_TIMESTAMP(6), 0) FROM ")
		b.WriteString(s.table)
		b.WriteString(" WHERE id IN (")
		for j, i := range part {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("?")
			args = append(args, ents[i].id[:])
		}
		b.WriteString(") ORDER BY id FOR UPDATE")
	}
	var byID map[[32]byte]int
	if s.d == MySQL {
		byID = make(map[[32]byte]int, len(part))
		for _, i := range part {
			byID[ents[i].id] = i
		}
	}
	res, err := tx.QueryContext(ctx, b.String(), args...)
	if err != nil {
		return err
	}
	defer res.Close()
	for res.Next() {
		var (
			n                 int
			id, ns, key       []byte
			applied, claimRev sql.NullString
			by, claimTok      []byte
			r                 row
		)
		dest := []any{&n, &applied, &by, &claimRev, &claimTok, &r.claimed, &r.live}
		if s.d == MySQL {
			dest = append([]any{&id, &ns, &key}, dest[1:]...)
		}
		if err := res.Scan(dest...); err != nil {
			return fmt.Errorf("reading a row of %s: %w", s.table, err)
		}
		if s.d == MySQL {
			var k [32]byte
			copy(k[:], id)
			i, ok := byID[k]
			if !ok {
				return fmt.Errorf("%s answered a row that was not asked for", s.table)
			}
			if string(ns) != ents[i].ns || string(key) != ents[i].key {
				return errCollision(ents[i])
			}
			n = i
		}
		if n < 0 || n >= len(rows) {
			return fmt.Errorf("%s answered a row that was not asked for", s.table)
		}
		r.found = true
		if err := readRow(&r, applied, by, claimRev, claimTok); err != nil {
			return err
		}
		rows[n] = r
	}
	return res.Err()
}

// readRow fills r from nullable columns.
func readRow(r *row, applied sql.NullString, by []byte, claimRev sql.NullString, claimTok []byte) error {
	var err error
	if applied.Valid {
		if r.applied, err = parseRev(applied.String); err != nil {
			return err
		}
		r.exists = true
	}
	if by != nil {
		if len(by) != len(r.by) {
			return fmt.Errorf("unreadable token of %d bytes in the table", len(by))
		}
		copy(r.by[:], by)
		r.hasBy = true
	}
	if claimRev.Valid {
		if r.claimRev, err = parseRev(claimRev.String); err != nil {
			return err
		}
	}
	if claimTok != nil {
		if len(claimTok) != len(r.claimTok) {
			return fmt.Errorf("unreadable token of %d bytes in the table", len(claimTok))
		}
		copy(r.claimTok[:], claimTok)
	}
	return nil
}

// writeRows writes the rows idx names as they now are. SQLite upserts them
// all: it holds the database's write lock. MySQL inserts the rows it found
// missing (another transaction inserting one first is a conflict to retry,
// since READ COMMITTED takes no gap locks) and upserts the ones it locked.
func (s *Store) writeRows(ctx context.Context, tx *sql.Tx, ents []entity, rows []row, idx []int, found bool) error {
	for start := 0; start < len(idx); start += chunk {
		part := idx[start:min(start+chunk, len(idx))]
		var b strings.Builder
		args := make([]any, 0, 8*len(part))
		b.WriteString("INSERT INTO ")
		b.WriteString(s.table)
		if s.d == SQLite {
			b.WriteString(" (namespace, entity_key, applied, applied_token, claim_rev, claim_token, claim_until) VALUES ")
		} else {
			b.WriteString(" (id, namespace, entity_key, applied, applied_token, claim_rev, claim_token, claim_until) VALUES ")
		}
		for j, i := range part {
			if j > 0 {
				b.WriteString(", ")
			}
			e, r := &ents[i], &rows[i]
			if s.d == SQLite {
				b.WriteString("(?, ?, ?, ?, ?, ?, strftime('%Y-%m-%d %H:%M:%f', 'now', ?))")
			} else {
				b.WriteString("(?, ?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND)")
				args = append(args, e.id[:])
			}
			var applied, by, claimRev, claimTok any
			if r.exists {
				applied = s.d.revArg(r.applied)
			}
			if r.hasBy {
				by = r.by[:]
			}
			claim := r.claimed && r.lease > 0
			if claim {
				claimRev, claimTok = s.d.revArg(r.claimRev), r.claimTok[:]
			}
			args = append(args, e.nsBytes(), e.keyBytes(), applied, by, claimRev, claimTok, s.d.leaseArg(r.lease, claim))
		}
		switch {
		case s.d == SQLite:
			b.WriteString(" ON CONFLICT (namespace, entity_key) DO UPDATE SET applied = excluded.applied, applied_token = excluded.applied_token, " +
				"claim_rev = excluded.claim_rev, claim_token = excluded.claim_token, claim_until = excluded.claim_until")
		case found:
			b.WriteString(" ON DUPLICATE KEY UPDATE applied = VALUES(applied), applied_token = VALUES(applied_token), " +
				"claim_rev = VALUES(claim_rev), claim_token = VALUES(claim_token), claim_until = VALUES(claim_until)")
		}
		if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
			if !found && duplicateKey(err) {
				// Only errConflict is for callers to match (retry runs the
				// call again); the driver's error is context.
				return fmt.Errorf("%w: %v", errConflict, err) //nolint:errorlint // see above
			}
			return err
		}
	}
	return nil
}
