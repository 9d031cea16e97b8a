package sqlstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/revguard/revguard"
)

// Store is a [revguard.Store], and a [revguard.Transactor], that keeps applied
// revisions and claims in one table of a SQL database. It is safe for
// concurrent use, and any number of processes may share the table.
type Store struct {
	db      *sql.DB
	d       Dialect
	table   string // quoted
	schema  string // the schema WithTable names, unquoted, or ""
	name    string // the table's own name, unquoted
	retries int
	q       queries
}

var _ revguard.Transactor = (*Store)(nil)

// Option configures a [Store].
type Option func(*config)

type config struct {
	table   string
	retries int
}

// DefaultTable is the table a [Store] uses unless [WithTable] names another.
const DefaultTable = "revguard_revisions"

// WithTable sets the table, a name of letters, digits and underscores that
// does not start with a digit, at most 63 long, optionally qualified by a
// schema of the same form ("events.revisions"). [New] refuses anything else.
// The default is [DefaultTable], "revguard_revisions".
func WithTable(name string) Option {
	return func(c *config) { c.table = name }
}

// WithRetries sets how many times an operation runs again after the
// database aborted it for a conflict with a concurrent transaction: a
// serialization failure or deadlock (SQLSTATE 40001 or 40P01, MySQL error
// 1213), a busy SQLite database, or a row another transaction inserted
// first. Such an abort changes nothing, so running again is safe;
// [Store.Transact] then runs its handler again too, in a new transaction.
// Retries wait a few random milliseconds, longer each time. The default is
// 10.
func WithRetries(n int) Option {
	return func(c *config) { c.retries = n }
}

// New returns a [Store] that keeps its table in db, which speaks dialect. It
// does no I/O: call [Store.CreateTable] once, or create the table as the
// package documentation shows. It returns an error for a nil db, an unknown
// dialect or an invalid option.
func New(db *sql.DB, dialect Dialect, opts ...Option) (*Store, error) {
	if db == nil {
		return nil, errors.New("sqlstore: New: nil *sql.DB")
	}
	if dialect < Postgres || dialect > MySQL {
		return nil, fmt.Errorf("sqlstore: New: unknown dialect %s (want sqlstore.Postgres, SQLite or MySQL)", dialect)
	}
	cfg := config{table: DefaultTable, retries: 10}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("sqlstore: New: nil Option")
		}
		o(&cfg)
	}
	table, err := dialect.quoteTable(cfg.table)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: New: WithTable: %w", err)
	}
	if cfg.retries < 0 {
		return nil, fmt.Errorf("sqlstore: New: WithRetries(%d): want 0 or more", cfg.retries)
	}
	s := &Store{db: db, d: dialect, table: table, retries: cfg.retries}
	if schema, name, ok := strings.Cut(cfg.table, "."); ok {
		s.schema, s.name = schema, name
	} else {
		s.name = cfg.table
	}
	s.q = buildQueries(dialect, table)
	return s, nil
}

// Dialect returns the dialect the store speaks.
func (s *Store) Dialect() Dialect { return s.d }

// Table returns the table name, quoted as the store writes it in SQL.
func (s *Store) Table() string { return s.table }

// CreateTable creates the store's table unless it exists. It is safe to
// call on every start, from many processes at once.
func (s *Store) CreateTable(ctx context.Context) error {
	var err error
	for range 3 {
		if _, err = s.db.ExecContext(ctx, s.q.create); err == nil || !s.createRace(err) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("sqlstore: creating table %s: %w", s.table, err)
	}
	return nil
}

// createRace reports PostgreSQL's answer to two CREATE TABLE IF NOT
// EXISTS racing: one of them fails on the catalog's unique index (23505),
// on the table (42P07), or on the table's row type (42710, "type already
// exists"), depending on where the two met.
func (s *Store) createRace(err error) bool {
	var e interface{ SQLState() string }
	if s.d != Postgres || !errors.As(err, &e) {
		return false
	}
	switch e.SQLState() {
	case "23505", "42P07", "42710":
		return true
	}
	return false
}

// entity is one (namespace, key) with the hash that keys its row.
type entity struct {
	id  [sha256.Size]byte
	ns  string
	key string
	// raw is what id hashes: the namespace's length as one byte, so that no
	// two (namespace, key) pairs hash the same bytes, the namespace, the
	// key. Statements take namespace and key from it, as byte strings
	// copied once.
	raw []byte
}

// nsBytes and keyBytes are the namespace and key as statements take them;
// neither is nil, which a driver would send as NULL.
func (e *entity) nsBytes() []byte  { return e.raw[1 : 1+len(e.ns) : 1+len(e.ns)] }
func (e *entity) keyBytes() []byte { return e.raw[1+len(e.ns):] }

func newEntity(ns, key string) (entity, error) {
	var e entity
	_, err := e.fill(nil, ns, key)
	return e, err
}

// fill checks ns and key, makes e that entity, with raw appended to buf,
// and returns what is left of buf.
func (e *entity) fill(buf []byte, ns, key string) ([]byte, error) {
	if len(ns) > revguard.MaxNamespaceLen {
		return buf, fmt.Errorf("sqlstore: namespace of %d bytes, above the limit of %d", len(ns), revguard.MaxNamespaceLen)
	}
	if err := revguard.CheckKey(key); err != nil {
		return buf, err
	}
	if cap(buf) < 1+len(ns)+len(key) {
		buf = make([]byte, 0, 1+len(ns)+len(key))
	}
	raw := append(append(append(buf[:0:cap(buf)], byte(len(ns))), ns...), key...) //nolint:gosec // G115: len(ns) <= MaxNamespaceLen, 255, checked above
	*e = entity{id: sha256.Sum256(raw), ns: ns, key: key, raw: raw[:len(raw):len(raw)]}
	return raw[len(raw):], nil
}

// byID sorts indices into ents by row hash: every statement that touches
// several rows locks them in this order, so two batches never wait on each
// other in a cycle.
func byID(ents []entity) []int {
	order := make([]int, len(ents))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return bytes.Compare(ents[a].id[:], ents[b].id[:]) })
	return order
}

// checkDistinct refuses a batch that names one entity twice: the contract
// forbids it, and a statement cannot change one row twice.
func checkDistinct(ents []entity, order []int) error {
	for j := 1; j < len(order); j++ {
		a, b := order[j-1], order[j]
		if ents[a].id == ents[b].id {
			if a > b {
				a, b = b, a
			}
			return fmt.Errorf("sqlstore: batch items %d and %d name the same entity (namespace %q, key %q)", a, b, ents[a].ns, ents[a].key)
		}
	}
	return nil
}

// errCollision is an entity whose row hash another entity's row already
// has. SHA-256 makes it a theoretical case; it is refused, not merged.
func errCollision(e entity) error {
	return fmt.Errorf("the row hash of namespace %q key %q belongs to another entity's row", e.ns, e.key)
}

// querier is what a statement runs on: the *sql.DB, or a transaction.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// retry runs op until it succeeds, fails for a reason other than a
// conflict, runs out of retries, or ctx ends. Its errors name the package
// and what failed, except a handler's, which Transact returns as it is.
func (s *Store) retry(ctx context.Context, what string, op func() error) error {
	for attempt := 0; ; attempt++ {
		err := op()
		if err == nil {
			return nil
		}
		if errors.As(err, new(handlerError)) && !s.d.retryable(err) {
			return err
		}
		if !s.d.retryable(err) {
			// database/sql reports a deadline that passed mid-transaction as
			// "bad connection" or "already rolled back": name the cause, as
			// the Store contract asks, so errors.Is finds it.
			if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
				return fmt.Errorf("sqlstore: %s: %w (%w)", what, cerr, err)
			}
			return fmt.Errorf("sqlstore: %s: %w", what, err)
		}
		if attempt >= s.retries {
			return fmt.Errorf("sqlstore: %s: gave up after %d attempts: %w", what, attempt+1, err)
		}
		// Spread the retries of transactions that collided, so that they do
		// not collide again. The ceiling doubles up to a quarter second:
		// sixteen MariaDB transactions inserting one new row deadlock on its
		// gap lock again and again with a lower one, under load.
		wait := time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt, 8))) //nolint:gosec // G404: jitter, not a secret
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			//nolint:errorlint // %v: the context's end is the cause; wrapping the last conflict too would let errors.Is match a retried handler's error
			return fmt.Errorf("sqlstore: %s: %w (after %v)", what, ctx.Err(), err)
		case <-t.C:
		}
	}
}

// inTx runs fn in a transaction of its own, committed if fn returns nil,
// retried on conflicts.
func (s *Store) inTx(ctx context.Context, what string, fn func(tx *sql.Tx) error) error {
	return s.retry(ctx, what, func() error {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			_ = tx.Rollback()
			return err
		}
		return tx.Commit()
	})
}

// Claim implements [revguard.Store.Claim].
func (s *Store) Claim(ctx context.Context, req revguard.Request) (revguard.Reply, error) {
	out, err := s.ClaimBatch(ctx, []revguard.Request{req})
	if err != nil {
		return revguard.Reply{}, err
	}
	return out[0], nil
}

// ClaimBatch implements [revguard.Store.ClaimBatch]. PostgreSQL decides a
// batch in one statement per distinct request shape (the guard's batches have
// one); MySQL and SQLite lock, read and write the batch's rows in one
// transaction.
func (s *Store) ClaimBatch(ctx context.Context, reqs []revguard.Request) ([]revguard.Reply, error) {
	out := make([]revguard.Reply, len(reqs))
	if len(reqs) == 0 {
		return out, nil
	}
	ents, order, err := entities(len(reqs), func(i int) (string, string) { return reqs[i].Namespace, reqs[i].Key })
	if err != nil {
		return nil, err
	}
	if s.d == Postgres {
		left := order
		err = s.retry(ctx, "claim", func() (err error) {
			left, err = s.pgClaim(ctx, s.db, reqs, ents, left, out)
			return err
		})
	} else {
		err = s.inTx(ctx, "claim", func(tx *sql.Tx) error { return s.lockClaim(ctx, tx, reqs, ents, order, out) })
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Commit implements [revguard.Store.Commit].
func (s *Store) Commit(ctx context.Context, ns, key string, token revguard.Token) error {
	errs, err := s.CommitBatch(ctx, []revguard.Commit{{Namespace: ns, Key: key, Token: token}})
	if err != nil {
		return err
	}
	return errs[0]
}

// CommitBatch implements [revguard.Store.CommitBatch], in one statement on
// PostgreSQL and one transaction elsewhere.
func (s *Store) CommitBatch(ctx context.Context, commits []revguard.Commit) ([]error, error) {
	out := make([]error, len(commits))
	if len(commits) == 0 {
		return out, nil
	}
	ents, order, err := entities(len(commits), func(i int) (string, string) { return commits[i].Namespace, commits[i].Key })
	if err != nil {
		return nil, err
	}
	if s.d == Postgres {
		left := order
		err = s.retry(ctx, "commit", func() (err error) {
			left, err = s.pgCommit(ctx, commits, ents, left, out, nil)
			return err
		})
	} else {
		err = s.inTx(ctx, "commit", func(tx *sql.Tx) error { return s.lockCommit(ctx, tx, commits, ents, order, out) })
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

func errLost(key string) error {
	return fmt.Errorf("%w: %q holds no live claim by this token", revguard.ErrLeaseLost, key)
}

// Renew implements [revguard.Store.Renew]. The lease runs on the database's
// clock.
func (s *Store) Renew(ctx context.Context, ns, key string, token revguard.Token, lease time.Duration) error {
	e, err := newEntity(ns, key)
	if err != nil {
		return err
	}
	if s.d == Postgres {
		return s.retry(ctx, "renew", func() error { return s.pgRenew(ctx, e, token, lease) })
	}
	var lost error
	err = s.inTx(ctx, "renew", func(tx *sql.Tx) error {
		lost = nil
		return s.mutate(ctx, tx, []entity{e}, []int{0}, func(_ int, r *row) bool {
			if !r.claimed || !r.live || r.claimTok != token {
				lost = errLost(key)
				return false
			}
			r.lease = lease
			return true
		})
	})
	if err != nil {
		return err
	}
	return lost
}

// Release implements [revguard.Store.Release].
func (s *Store) Release(ctx context.Context, ns, key string, token revguard.Token) error {
	e, err := newEntity(ns, key)
	if err != nil {
		return err
	}
	args := append(s.entityArgs(e), token[:])
	return s.retry(ctx, "release", func() error {
		_, err := s.db.ExecContext(ctx, s.q.release, args...)
		return err
	})
}

// Peek implements [revguard.Store.Peek].
func (s *Store) Peek(ctx context.Context, ns, key string) (revguard.State, error) {
	e, err := newEntity(ns, key)
	if err != nil {
		return revguard.State{}, err
	}
	var applied sql.NullString
	// A read can fail too, at SERIALIZABLE, when PostgreSQL finds it part of
	// a cycle of read/write dependencies (SQLSTATE 40001).
	err = s.retry(ctx, "peek", func() error {
		err := s.db.QueryRowContext(ctx, s.q.peek, s.entityArgs(e)...).Scan(&applied)
		if errors.Is(err, sql.ErrNoRows) {
			applied = sql.NullString{}
			return nil
		}
		return err
	})
	if err != nil {
		return revguard.State{}, err
	}
	return stateOf(applied, "peek")
}

// stateOf reads the applied column as what reports it.
func stateOf(applied sql.NullString, what string) (revguard.State, error) {
	if !applied.Valid {
		return revguard.State{}, nil
	}
	rev, err := parseRev(applied.String)
	if err != nil {
		return revguard.State{}, fmt.Errorf("sqlstore: %s: %w", what, err)
	}
	return revguard.State{Applied: rev, Exists: true}, nil
}

// Set implements [revguard.Store.Set].
func (s *Store) Set(ctx context.Context, ns, key string, rev revguard.Revision) error {
	e, err := newEntity(ns, key)
	if err != nil {
		return err
	}
	if s.d == Postgres {
		return s.retry(ctx, "set", func() error { return s.pgSet(ctx, e, rev) })
	}
	return s.inTx(ctx, "set", func(tx *sql.Tx) error {
		return s.mutate(ctx, tx, []entity{e}, []int{0}, func(_ int, r *row) bool {
			r.applied, r.exists, r.hasBy, r.claimed = rev, true, false, false
			return true
		})
	})
}

// Forget implements [revguard.Store.Forget].
func (s *Store) Forget(ctx context.Context, ns, key string) error {
	e, err := newEntity(ns, key)
	if err != nil {
		return err
	}
	return s.retry(ctx, "forget", func() error {
		_, err := s.db.ExecContext(ctx, s.q.forget, s.entityArgs(e)...)
		return err
	})
}

// entityArgs are the arguments of q.entity, the condition that picks one
// entity's row.
func (s *Store) entityArgs(e entity) []any {
	if s.d == SQLite {
		return []any{e.nsBytes(), e.keyBytes()}
	}
	return []any{e.id[:], e.nsBytes(), e.keyBytes()}
}

type txKey struct{}

// TxFrom returns the transaction that [Store.Transact] runs its handler in,
// or nil if ctx carries none. A handler in the Transactional mode makes its
// writes through it, so that they commit together with the revision, or not
// at all.
func TxFrom(ctx context.Context) *sql.Tx {
	tx, _ := ctx.Value(txKey{}).(*sql.Tx)
	return tx
}

// handlerError marks fn's error, so that Transact returns it as fn did.
type handlerError struct{ err error }

func (e handlerError) Error() string { return e.err.Error() }
func (e handlerError) Unwrap() error { return e.err }

// Transact implements [revguard.Transactor.Transact]. It begins a transaction
// with the database's default isolation level, advances req in it, and, if
// that is Granted, runs fn with a context that carries the transaction (see
// [TxFrom]) and commits. An error from fn, or a panic, rolls back both fn's
// writes and the advance; the error is returned as fn returned it and the
// panic goes on. A concurrent Transact on the same entity waits for the row
// lock, then sees the outcome.
//
// When the database aborts the transaction for a conflict (see
// [WithRetries]), Transact runs again from the start, fn included. An error
// from COMMIT itself is returned: the outcome may be unknown (the
// connection dropped), and the redelivery finds out, as a duplicate if the
// commit went through.
func (s *Store) Transact(ctx context.Context, req revguard.Request, fn func(context.Context) error) (revguard.Reply, error) {
	e, err := newEntity(req.Namespace, req.Key)
	if err != nil {
		return revguard.Reply{}, err
	}
	req.Advance = true
	reqs, ents, order := []revguard.Request{req}, []entity{e}, []int{0}
	out := make([]revguard.Reply, 1)
	err = s.retry(ctx, "transaction", func() error {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		done := false
		defer func() {
			if !done { // an error, or a panic on its way up
				_ = tx.Rollback()
			}
		}()
		if s.d == Postgres {
			// A conflict rolls the whole transaction back: every attempt
			// decides the request anew.
			_, err = s.pgClaim(ctx, tx, reqs, ents, order, out)
		} else {
			err = s.lockClaim(ctx, tx, reqs, ents, order, out)
		}
		if err != nil || out[0].Verdict != revguard.Granted {
			return err
		}
		if err := fn(context.WithValue(ctx, txKey{}, tx)); err != nil {
			return handlerError{err}
		}
		done = true
		if err := tx.Commit(); err != nil {
			if s.d.retryable(err) {
				return err // a serialization failure at commit: rolled back
			}
			return fmt.Errorf("COMMIT of %q revision %d failed, outcome unknown: %w", req.Key, req.Rev, err)
		}
		return nil
	})
	if he, ok := err.(handlerError); ok { //nolint:errorlint // fn's error as it returned it; retry's own wrapping (gave up after retries) stays
		return out[0], he.err
	}
	return out[0], err
}

// entities names a batch's n entities, with their positions in row-lock
// order; the batch must name each entity once.
func entities(n int, name func(i int) (ns, key string)) ([]entity, []int, error) {
	ents := make([]entity, n)
	size := 0
	for i := range n {
		ns, key := name(i)
		size += 1 + len(ns) + len(key)
	}
	// One buffer holds every entity's raw bytes: a batch allocates once,
	// not once an entity.
	buf := make([]byte, 0, size)
	for i := range ents {
		ns, key := name(i)
		var err error
		if buf, err = ents[i].fill(buf, ns, key); err != nil {
			return nil, nil, err
		}
	}
	if n == 1 {
		return ents, []int{0}, nil
	}
	order := byID(ents)
	if err := checkDistinct(ents, order); err != nil {
		return nil, nil, err
	}
	return ents, order, nil
}
