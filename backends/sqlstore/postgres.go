package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/revguard/revguard"
)

// PostgreSQL decides in SQL. A claim, an advance or a commit is one
// statement that writes, with the row locked, only what the contract
// grants, and returns the rows it wrote. A request it refused changed
// nothing; a second, read-only statement then reads the row to say why.
// When that read refuses the request too (Go decides it again, as the
// locking dialects do), the call took effect at the read. When it would
// grant, a concurrent change came between the two statements, and the
// request runs again.

// maxRereads bounds how often one call runs again because the row changed
// between its write and its read. Each rerun reads anew, so a handful is
// the most seen in practice.
const maxRereads = 100

// shape is what the requests of one batch statement share: the guard's
// batches have one shape, and the statement reads per-row values from the
// proposed row only.
type shape struct {
	advance bool
	lease   time.Duration
	seq     bool
	first   revguard.Revision
	maxStep uint64
}

func shapeOf(r *revguard.Request) shape {
	sh := shape{advance: r.Advance, seq: r.Sequential, maxStep: r.MaxStep}
	if r.Sequential {
		sh.first = r.First
	}
	if !r.Advance {
		sh.lease = r.Lease
	}
	return sh
}

func decimal(r revguard.Revision) string { return strconv.FormatUint(uint64(r), 10) }

// low returns the lowest applied revision on which req is granted: the
// Sequential and MaxStep bounds, exact in uint64, so that SQL only compares.
func low(req *revguard.Request) revguard.Revision {
	var lo revguard.Revision
	if req.Sequential && req.Rev > 0 {
		lo = req.Rev - 1
	}
	if step := revguard.Revision(req.MaxStep); step != 0 && req.Rev > step && req.Rev-step > lo {
		lo = req.Rev - step
	}
	return lo
}

// pgClaim decides reqs[pending], one statement per shape, and returns the
// requests it left undecided. Outside a transaction (q is the *sql.DB) each
// statement commits on its own, so when one fails the requests that earlier
// ones decided stay decided: the caller's retry after a conflict must run
// only those returned, or an advance that took effect would run again, be
// refused as its own duplicate, or as stale once the entity moved on, and
// its event be dropped.
func (s *Store) pgClaim(ctx context.Context, q querier, reqs []revguard.Request, ents []entity, pending []int, out []revguard.Reply) ([]int, error) {
	for attempt := 0; len(pending) > 0; attempt++ {
		if attempt == maxRereads {
			return pending, fmt.Errorf("the row of %q changed under each of %d reads", reqs[pending[0]].Key, maxRereads)
		}
		var refused []int
		for left := pending; len(left) > 0; {
			sh := shapeOf(&reqs[left[0]])
			var group, rest []int
			for _, i := range left {
				if shapeOf(&reqs[i]) == sh {
					group = append(group, i)
				} else {
					rest = append(rest, i)
				}
			}
			var r []int
			var err error
			if len(group) == 1 {
				r, err = s.pgClaimOne(ctx, q, group[0], reqs, ents, out)
			} else {
				r, err = s.pgClaimBatch(ctx, q, sh, group, reqs, ents, out)
			}
			if err != nil {
				return slices.Concat(refused, left), err
			}
			refused = append(refused, r...)
			left = rest
		}
		if len(refused) == 0 {
			return nil, nil
		}
		rows, err := s.pgRead(ctx, q, ents, refused)
		if err != nil {
			return refused, err
		}
		pending = nil
		for j, i := range refused {
			v, change := decide(&reqs[i], &rows[j])
			if change {
				pending = append(pending, i)
				continue
			}
			out[i] = revguard.Reply{Verdict: v, State: rows[j].state()}
		}
	}
	return nil, nil
}

// pgClaimOne runs the statement for request i alone and returns i if it
// wrote nothing.
func (s *Store) pgClaimOne(ctx context.Context, q querier, i int, reqs []revguard.Request, ents []entity, out []revguard.Reply) ([]int, error) {
	req, e := &reqs[i], &ents[i]
	insert := !req.Sequential || req.Rev == req.First
	args := []any{e.id[:], e.nsBytes(), e.keyBytes(), decimal(req.Rev), req.Token[:], decimal(low(req))}
	if !req.Advance {
		args = append(args, req.Lease.Microseconds())
	}
	var before sql.NullString
	err := q.QueryRowContext(ctx, s.q.claim[b2i(req.Advance)][b2i(insert)], args...).Scan(&before)
	if errors.Is(err, sql.ErrNoRows) {
		return []int{i}, nil
	}
	if err != nil {
		return nil, err
	}
	var r row
	if err := readRow(&r, before, nil, sql.NullString{}, nil); err != nil {
		return nil, err
	}
	out[i] = revguard.Reply{Verdict: revguard.Granted, State: r.state()}
	return nil, nil
}

// pgClaimBatch runs one statement for the requests idx names, which share
// sh, and returns those it wrote nothing for.
func (s *Store) pgClaimBatch(ctx context.Context, q querier, sh shape, idx []int, reqs []revguard.Request, ents []entity, out []revguard.Reply) ([]int, error) {
	sortByID(ents, idx)
	ids, nss, keys := arrays(ents, idx)
	revs, toks := make([]string, len(idx)), make([]byte, 0, len(idx)*len(revguard.Token{}))
	for j, i := range idx {
		revs[j], toks = decimal(reqs[i].Rev), append(toks, reqs[i].Token[:]...)
	}
	var maxStep any
	if sh.maxStep != 0 {
		maxStep = strconv.FormatUint(sh.maxStep, 10)
	}
	args := []any{ids, nss, keys, revs, toks, sh.seq, decimal(sh.first), maxStep}
	if !sh.advance {
		args = append(args, sh.lease.Microseconds())
	}
	rows, err := q.QueryContext(ctx, s.q.claimBatch[b2i(sh.advance)], args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	done := make([]bool, len(idx))
	var id, before sql.RawBytes
	var granted bool
	for rows.Next() {
		if err := rows.Scan(&id, &granted, &before); err != nil {
			return nil, fmt.Errorf("reading a claim's answer: %w", err)
		}
		j, err := find(ents, idx, id, done)
		if err != nil {
			return nil, err
		}
		i, req := idx[j], &reqs[idx[j]]
		if !granted {
			// The entity had no row; one holding nothing was written for a
			// request that an empty entity refuses.
			v := req.Decide(revguard.State{})
			if v == revguard.Granted {
				return nil, fmt.Errorf("claim of %q: the statement refused what an empty entity grants", req.Key)
			}
			out[i] = revguard.Reply{Verdict: v}
			continue
		}
		var st revguard.State
		if before != nil {
			if st.Applied, err = parseRevBytes(before); err != nil {
				return nil, err
			}
			st.Exists = true
		}
		out[i] = revguard.Reply{Verdict: revguard.Granted, State: st}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return notDone(idx, done), nil
}

// pgCommit commits commits[pending] and returns those it left undecided,
// which, as with pgClaim, are all a retry may run again: a commit that took
// effect and ran again would find its claim gone and, once the entity moved
// on, answer ErrLeaseLost for a revision it recorded.
//
// With payload (a single commit, from CommitPayload) the commit also
// stores payload.
func (s *Store) pgCommit(ctx context.Context, commits []revguard.Commit, ents []entity, pending []int, out []error, payload []byte) ([]int, error) {
	for attempt := 0; len(pending) > 0; attempt++ {
		if attempt == maxRereads {
			return pending, fmt.Errorf("the row of %q changed under each of %d reads", commits[pending[0]].Key, maxRereads)
		}
		var refused []int
		var err error
		if len(pending) == 1 {
			refused, err = s.pgCommitOne(ctx, pending[0], commits, ents, out, payload)
		} else {
			refused, err = s.pgCommitBatch(ctx, pending, commits, ents, out)
		}
		if err != nil {
			return pending, err
		}
		if len(refused) == 0 {
			return nil, nil
		}
		rows, err := s.pgRead(ctx, s.db, ents, refused)
		if err != nil {
			return refused, err
		}
		pending = nil
		for j, i := range refused {
			r, tok := &rows[j], commits[i].Token
			switch {
			case r.claimed && r.live && r.claimTok == tok:
				pending = append(pending, i) // the write should have happened
			case r.exists && r.hasBy && r.by == tok:
				out[i] = nil // a retried commit
			default:
				out[i] = errLost(commits[i].Key)
			}
		}
	}
	return nil, nil
}

func (s *Store) pgCommitOne(ctx context.Context, i int, commits []revguard.Commit, ents []entity, out []error, payload []byte) ([]int, error) {
	e := &ents[i]
	q, args := s.q.commit, []any{e.id[:], e.nsBytes(), e.keyBytes(), commits[i].Token[:]}
	if payload != nil {
		q, args = s.q.commitPayload, append(args, payload)
	}
	res, err := s.db.ExecContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return []int{i}, nil
	}
	out[i] = nil
	return nil, nil
}

func (s *Store) pgCommitBatch(ctx context.Context, idx []int, commits []revguard.Commit, ents []entity, out []error) ([]int, error) {
	sortByID(ents, idx)
	ids, nss, keys := arrays(ents, idx)
	toks := make([]byte, 0, len(idx)*len(revguard.Token{}))
	for _, i := range idx {
		toks = append(toks, commits[i].Token[:]...)
	}
	rows, err := s.db.QueryContext(ctx, s.q.commitBatch, ids, nss, keys, toks)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	done := make([]bool, len(idx))
	var id sql.RawBytes
	var committed bool
	for rows.Next() {
		if err := rows.Scan(&id, &committed); err != nil {
			return nil, fmt.Errorf("reading a commit's answer: %w", err)
		}
		j, err := find(ents, idx, id, done)
		if err != nil {
			return nil, err
		}
		if committed {
			out[idx[j]] = nil
		} else {
			// The entity had no row: no claim to commit.
			out[idx[j]] = errLost(commits[idx[j]].Key)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return notDone(idx, done), nil
}

// sortByID puts idx in row-hash order: the batch statements lock rows in
// the order of their arrays, and find searches idx by hash.
func sortByID(ents []entity, idx []int) {
	slices.SortFunc(idx, func(a, b int) int { return bytes.Compare(ents[a].id[:], ents[b].id[:]) })
}

// find returns the position in idx, which is in hash order, of the row
// hash id, and marks it done; an unknown or repeated hash is an answer this
// store cannot read.
func find(ents []entity, idx []int, id []byte, done []bool) (int, error) {
	j, ok := slices.BinarySearchFunc(idx, id, func(i int, id []byte) int { return bytes.Compare(ents[i].id[:], id) })
	if !ok || done[j] {
		return 0, errors.New("the database answered a row that was not asked for")
	}
	done[j] = true
	return j, nil
}

// pgRead reads the rows of ents[idx] as they are now, one row per index,
// not found where the table has none.
func (s *Store) pgRead(ctx context.Context, q querier, ents []entity, idx []int) ([]row, error) {
	rows := make([]row, len(idx))
	var res *sql.Rows
	var err error
	if len(idx) == 1 {
		e := &ents[idx[0]]
		res, err = q.QueryContext(ctx, s.q.read, e.id[:], e.nsBytes(), e.keyBytes())
	} else {
		sortByID(ents, idx)
		ids, nss, keys := arrays(ents, idx)
		res, err = q.QueryContext(ctx, s.q.readBatch, ids, nss, keys)
	}
	if err != nil {
		return nil, err
	}
	defer res.Close()
	done := make([]bool, len(idx))
	for res.Next() {
		var (
			id                  []byte
			applied, claimRev   sql.NullString
			appliedBy, claimTok []byte
			live, same          bool
		)
		if err := res.Scan(&id, &applied, &appliedBy, &claimRev, &claimTok, &live, &same); err != nil {
			return nil, fmt.Errorf("reading a row of %s: %w", s.table, err)
		}
		j, err := find(ents, idx, id, done)
		if err != nil {
			return nil, err
		}
		if !same {
			return nil, errCollision(ents[idx[j]])
		}
		r := &rows[j]
		r.found, r.claimed, r.live = true, live, live
		if err := readRow(r, applied, appliedBy, claimRev, claimTok); err != nil {
			return nil, err
		}
	}
	return rows, res.Err()
}

// arrays are ents[idx] as the batch statements take them: the row hashes
// one after another in one byte string, the namespaces and keys as arrays.
// A driver converts an array of byte strings element by element; hashes,
// all 32 bytes long, are cheaper cut apart in SQL.
func arrays(ents []entity, idx []int) (ids []byte, nss, keys [][]byte) {
	ids, nss, keys = make([]byte, 0, len(idx)*len(ents[0].id)), make([][]byte, len(idx)), make([][]byte, len(idx))
	for j, i := range idx {
		ids, nss[j], keys[j] = append(ids, ents[i].id[:]...), ents[i].nsBytes(), ents[i].keyBytes()
	}
	return ids, nss, keys
}

func (s *Store) pgRenew(ctx context.Context, e entity, token revguard.Token, lease time.Duration) error {
	res, err := s.db.ExecContext(ctx, s.q.renew, e.id[:], e.nsBytes(), e.keyBytes(), token[:], lease.Microseconds())
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return errLost(e.key)
	}
	return nil
}

func (s *Store) pgSet(ctx context.Context, e entity, rev revguard.Revision) error {
	res, err := s.db.ExecContext(ctx, s.q.set, e.id[:], e.nsBytes(), e.keyBytes(), decimal(rev))
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return errCollision(e)
	}
	return nil
}

// notDone returns the entries of idx whose statement row did not come back:
// the requests the statement refused.
func notDone(idx []int, done []bool) []int {
	var refused []int
	for j, i := range idx {
		if !done[j] {
			refused = append(refused, i)
		}
	}
	return refused
}
