package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/sqlstore"
)

// account is the event the transactional tests deliver: it credits amount
// to an account in the handler's transaction.
type account struct {
	key    string
	rev    revguard.Revision
	amount int64
}

func extractAccount(e account) (string, revguard.Revision, error) { return e.key, e.rev, nil }

// ledger is the handler's own state, in the same database as the store: a
// balance per account and a log of the revisions applied, in order.
type ledger struct {
	db      *sql.DB
	d       sqlstore.Dialect
	balance string
	log     string
}

func newLedger(t *testing.T, db *sql.DB, d sqlstore.Dialect) *ledger {
	t.Helper()
	l := &ledger{db: db, d: d, balance: "rgtest_balance_" + randomHex(6), log: "rgtest_log_" + randomHex(6)}
	seq := "id INTEGER PRIMARY KEY AUTOINCREMENT"
	switch d {
	case sqlstore.Postgres:
		seq = "id BIGSERIAL PRIMARY KEY"
	case sqlstore.MySQL:
		seq = "id BIGINT AUTO_INCREMENT PRIMARY KEY"
	}
	ctx := context.Background()
	for _, q := range []string{
		"CREATE TABLE " + l.balance + " (k VARCHAR(100) PRIMARY KEY, total BIGINT NOT NULL, applied BIGINT NOT NULL)",
		"CREATE TABLE " + l.log + " (" + seq + ", k VARCHAR(100) NOT NULL, rev BIGINT NOT NULL)",
	} {
		_, err := db.ExecContext(ctx, q)
		require.NoError(t, err, q)
	}
	t.Cleanup(func() {
		for _, table := range []string{l.balance, l.log} {
			_, _ = db.ExecContext(context.Background(), "DROP TABLE IF EXISTS "+table)
		}
	})
	return l
}

// q writes a statement with the dialect's placeholders: $n or ?.
func (l *ledger) q(query string) string {
	if l.d != sqlstore.Postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// handler applies e in the transaction the store passes down.
func (l *ledger) handler(ctx context.Context, e account) error {
	tx := sqlstore.TxFrom(ctx)
	if tx == nil {
		return errors.New("handler: no transaction in the context")
	}
	res, err := tx.ExecContext(ctx, l.q("UPDATE "+l.balance+" SET total = total + ?, applied = applied + 1 WHERE k = ?"), e.amount, e.key)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		if _, err := tx.ExecContext(ctx, l.q("INSERT INTO "+l.balance+" (k, total, applied) VALUES (?, ?, 1)"), e.key, e.amount); err != nil {
			return err
		}
	}
	_, err = tx.ExecContext(ctx, l.q("INSERT INTO "+l.log+" (k, rev) VALUES (?, ?)"), e.key, int64(e.rev))
	return err
}

func (l *ledger) total(t *testing.T, key string) (total, applied int64) {
	t.Helper()
	err := l.db.QueryRowContext(context.Background(), l.q("SELECT total, applied FROM "+l.balance+" WHERE k = ?"), key).Scan(&total, &applied)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0
	}
	require.NoError(t, err)
	return total, applied
}

// revs returns the revisions logged for key, in the order they committed.
func (l *ledger) revs(t *testing.T, key string) []revguard.Revision {
	t.Helper()
	rows, err := l.db.QueryContext(context.Background(), l.q("SELECT rev FROM "+l.log+" WHERE k = ? ORDER BY id"), key)
	require.NoError(t, err)
	defer rows.Close()
	var out []revguard.Revision
	for rows.Next() {
		var r int64
		require.NoError(t, rows.Scan(&r))
		out = append(out, revguard.Revision(r))
	}
	require.NoError(t, rows.Err())
	return out
}

// TestTransactExactlyOnce delivers every event of a stream several times,
// shuffled, from many goroutines at once, with redelivery on ErrGap as a
// transport would: the handler's writes, made in the store's transaction,
// must add up to exactly one application of each revision, in order. It
// runs under the database's default isolation and, on the servers, under
// SERIALIZABLE, where the store retries the transactions the database
// aborts.
func TestTransactExactlyOnce(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, d database) {
		settings := []struct{ name, param string }{{"Default", ""}}
		switch d.dialect {
		case sqlstore.Postgres:
			settings = append(settings, struct{ name, param string }{"Serializable", "default_transaction_isolation=serializable"})
		case sqlstore.MySQL:
			settings = append(settings, struct{ name, param string }{"Serializable", "tx_isolation=%27SERIALIZABLE%27"})
		}
		for _, set := range settings {
			t.Run(set.name, func(t *testing.T) {
				t.Parallel()
				db := d.open(t, set.param)
				if set.param != "" {
					assert.Equal(t, "serializable", isolation(t, db, d.dialect))
				}
				exactlyOnce(t, db, d.dialect)
			})
		}
	})
}

// isolation reads the session's default isolation level, in lower case
// (tx_isolation: MariaDB's name, see TestConformanceSerializable).
func isolation(t *testing.T, db *sql.DB, d sqlstore.Dialect) string {
	t.Helper()
	q := "SHOW default_transaction_isolation"
	if d == sqlstore.MySQL {
		q = "SELECT @@tx_isolation"
	}
	var level string
	require.NoError(t, db.QueryRowContext(context.Background(), q).Scan(&level))
	return strings.ToLower(level)
}

func exactlyOnce(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
	db.SetMaxOpenConns(8)
	s := newStore(t, db, d, sqlstore.WithRetries(50))
	l := newLedger(t, db, d)
	g := revguard.New(s, extractAccount, revguard.WithMode(revguard.Transactional), revguard.WithOrdering(revguard.Sequential))

	const keys, revs, copies, workers = 3, 12, 3, 8
	var queue []account
	for k := range keys {
		for r := 1; r <= revs; r++ {
			for range copies {
				queue = append(queue, account{fmt.Sprintf("acct-%d", k), revguard.Revision(r), int64(r * 10)})
			}
		}
	}
	rand.Shuffle(len(queue), func(i, j int) { queue[i], queue[j] = queue[j], queue[i] })

	var (
		mu       sync.Mutex
		outcomes = map[revguard.Outcome]int{}
		failures []error
		wg       sync.WaitGroup
	)
	next := func() (account, bool) {
		mu.Lock()
		defer mu.Unlock()
		if len(queue) == 0 {
			return account{}, false
		}
		e := queue[0]
		queue = queue[1:]
		return e, true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				e, ok := next()
				if !ok {
					return
				}
				out, err := g.Handle(ctx, e, l.handler)
				mu.Lock()
				switch {
				case errors.Is(err, revguard.ErrGap):
					queue = append(queue, e) // the transport redelivers it later
				case err != nil:
					failures = append(failures, fmt.Errorf("%s revision %d: %w", e.key, e.rev, err))
				default:
					outcomes[out]++
				}
				mu.Unlock()
				if errors.Is(err, revguard.ErrGap) {
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	require.Empty(t, failures)
	assert.Equal(t, keys*revs, outcomes[revguard.Applied], "applied outcomes")
	assert.Equal(t, keys*revs*(copies-1), outcomes[revguard.Duplicate]+outcomes[revguard.Stale], "dropped outcomes")
	var want []revguard.Revision
	for r := 1; r <= revs; r++ {
		want = append(want, revguard.Revision(r))
	}
	for k := range keys {
		key := fmt.Sprintf("acct-%d", k)
		total, applied := l.total(t, key)
		assert.Equal(t, int64(revs), applied, "%s: handler applications committed", key)
		assert.Equal(t, int64(10*revs*(revs+1)/2), total, "%s: balance", key)
		assert.Equal(t, want, l.revs(t, key), "%s: revisions in commit order", key)
		st, err := s.Peek(ctx, "", key)
		require.NoError(t, err)
		assert.Equal(t, revguard.State{Applied: revs, Exists: true}, st)
	}
}

// TestTransactRollsBack checks that a failing or panicking handler takes
// its own writes and the revision down with it, and that the redelivery
// applies.
func TestTransactRollsBack(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, d database) {
		t.Parallel()
		db := d.open(t, "")
		s := newStore(t, db, d.dialect)
		l := newLedger(t, db, d.dialect)
		g := revguard.New(s, extractAccount, revguard.WithMode(revguard.Transactional))
		ctx := context.Background()
		e := account{"acct", 1, 100}

		boom := errors.New("handler fails after writing")
		out, err := g.Handle(ctx, e, func(ctx context.Context, e account) error {
			if err := l.handler(ctx, e); err != nil {
				return err
			}
			return boom
		})
		assert.ErrorIs(t, err, boom)
		assert.Zero(t, out)
		assertNothing(t, l, s, e.key)

		func() {
			defer func() {
				assert.Equal(t, "handler panics after writing", recover())
			}()
			_, _ = g.Handle(ctx, e, func(ctx context.Context, e account) error {
				if err := l.handler(ctx, e); err != nil {
					return err
				}
				panic("handler panics after writing")
			})
			t.Error("Handle returned; want the handler's panic")
		}()
		assertNothing(t, l, s, e.key)

		out, err = g.Handle(ctx, e, l.handler)
		require.NoError(t, err)
		assert.Equal(t, revguard.Applied, out)
		total, applied := l.total(t, e.key)
		assert.Equal(t, int64(100), total)
		assert.Equal(t, int64(1), applied)

		out, err = g.Handle(ctx, e, l.handler)
		require.NoError(t, err)
		assert.Equal(t, revguard.Duplicate, out)
		_, applied = l.total(t, e.key)
		assert.Equal(t, int64(1), applied)
	})
}

func assertNothing(t *testing.T, l *ledger, s *sqlstore.Store, key string) {
	t.Helper()
	total, applied := l.total(t, key)
	assert.Zero(t, total, "balance after a rolled-back handler")
	assert.Zero(t, applied, "handler applications after a rolled-back handler")
	assert.Empty(t, l.revs(t, key))
	st, err := s.Peek(context.Background(), "", key)
	require.NoError(t, err)
	assert.False(t, st.Exists, "revision recorded after a rolled-back handler: %v", st)
}

// TestTransactConnectionKilled kills the transaction's connection from
// another one while the handler runs: COMMIT then fails, and Handle must
// report an error, never a drop, so that the message comes back; the
// redelivery applies once.
func TestTransactConnectionKilled(t *testing.T) {
	kills := map[sqlstore.Dialect]struct{ self, kill string }{
		sqlstore.Postgres: {"SELECT pg_backend_pid()", "SELECT pg_terminate_backend(%d)"},
		sqlstore.MySQL:    {"SELECT CONNECTION_ID()", "KILL %d"},
	}
	forEachDatabase(t, func(t *testing.T, d database) {
		k, ok := kills[d.dialect]
		if !ok {
			t.Skipf("%s runs in process: no connection to kill", d.name)
		}
		t.Parallel()
		db := d.open(t, "")
		s := newStore(t, db, d.dialect)
		l := newLedger(t, db, d.dialect)
		g := revguard.New(s, extractAccount, revguard.WithMode(revguard.Transactional))
		ctx := context.Background()
		e := account{"acct", 7, 70}

		out, err := g.Handle(ctx, e, func(ctx context.Context, e account) error {
			if err := l.handler(ctx, e); err != nil {
				return err
			}
			var id int64
			if err := sqlstore.TxFrom(ctx).QueryRowContext(ctx, k.self).Scan(&id); err != nil {
				return err
			}
			if _, err := db.ExecContext(ctx, fmt.Sprintf(k.kill, id)); err != nil {
				return fmt.Errorf("killing connection %d: %w", id, err)
			}
			// The handler succeeds: only COMMIT learns of the dead connection.
			time.Sleep(100 * time.Millisecond)
			return nil
		})
		require.Error(t, err, "Handle with the connection killed before COMMIT = %v", out)
		assert.Zero(t, out)
		t.Logf("Handle answered: %v", err)
		assertNothing(t, l, s, e.key)

		out, err = g.Handle(ctx, e, l.handler)
		require.NoError(t, err)
		assert.Equal(t, revguard.Applied, out)
		_, applied := l.total(t, e.key)
		assert.Equal(t, int64(1), applied)
	})
}

// TestTxFrom checks that a context without a transaction carries none.
func TestTxFrom(t *testing.T) {
	assert.Nil(t, sqlstore.TxFrom(context.Background()))
}
