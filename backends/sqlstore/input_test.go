package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/sqlstore"
)

func TestNewRefusesTableNames(t *testing.T) {
	// A handle to nowhere: New must not touch it.
	db, err := sql.Open("pgx", "postgres://nobody@127.0.0.1:1/none?connect_timeout=1")
	require.NoError(t, err)
	defer func() { _ = db.Close() }()
	bad := []string{
		"", " ", "1revs", "revs-1", "revs 1", "revs;", "revs; DROP TABLE users; --", `revs"; DROP TABLE users; --`,
		"revs`; DROP TABLE users; --", "revs'", `"revs"`, "`revs`", "[revs]", "revs--", "revs/*", "revs\x00", "revs\n",
		"ré", "revs.", ".revs", "a.b.c", "public..revs", "public.1revs", strings.Repeat("r", 64),
		"public." + strings.Repeat("r", 64), "revs)", "revs,x",
	}
	for _, d := range []sqlstore.Dialect{sqlstore.Postgres, sqlstore.SQLite, sqlstore.MySQL} {
		for _, name := range bad {
			s, err := sqlstore.New(db, d, sqlstore.WithTable(name))
			if assert.Error(t, err, "%s: WithTable(%q) = %v", d, name, s) {
				assert.Contains(t, err.Error(), fmt.Sprintf("%q", name), "%s: the error names the value", d)
			}
		}
		for _, name := range []string{"revguard_revisions", "_r", "R2", "select", "public.revs", strings.Repeat("r", 63)} {
			_, err := sqlstore.New(db, d, sqlstore.WithTable(name))
			assert.NoError(t, err, "%s: WithTable(%q)", d, name)
		}
	}
}

func TestNewRefusesBadArguments(t *testing.T) {
	db, err := sql.Open("sqlite", ":memory:")
	require.NoError(t, err)
	defer func() { _ = db.Close() }()
	for name, call := range map[string]func() (*sqlstore.Store, error){
		"nil db":       func() (*sqlstore.Store, error) { return sqlstore.New(nil, sqlstore.SQLite) },
		"zero dialect": func() (*sqlstore.Store, error) { return sqlstore.New(db, 0) },
		"dialect 9":    func() (*sqlstore.Store, error) { return sqlstore.New(db, 9) },
		"nil option":   func() (*sqlstore.Store, error) { return sqlstore.New(db, sqlstore.SQLite, nil) },
		"retries -1":   func() (*sqlstore.Store, error) { return sqlstore.New(db, sqlstore.SQLite, sqlstore.WithRetries(-1)) },
	} {
		s, err := call()
		assert.Error(t, err, "%s: New = %v", name, s)
	}
	s, err := sqlstore.New(db, sqlstore.SQLite)
	require.NoError(t, err)
	assert.Equal(t, `"revguard_revisions"`, s.Table())
	assert.Equal(t, sqlstore.SQLite, s.Dialect())
}

// TestTableNames uses a mixed-case name, a schema-qualified one and, on
// SQLite's private file, reserved words: quoting makes them all plain
// tables. (The servers are shared, so there the names carry a suffix.)
func TestTableNames(t *testing.T) {
	schemas := map[sqlstore.Dialect]string{sqlstore.Postgres: "public", sqlstore.SQLite: "main", sqlstore.MySQL: "revguard"}
	forEachDatabase(t, func(t *testing.T, d database) {
		t.Parallel()
		db := d.open(t, "")
		ctx := context.Background()
		suffix := randomHex(4)
		names := []string{"Revisions_" + suffix, schemas[d.dialect] + ".rgtest_" + suffix}
		if d.dialect == sqlstore.SQLite {
			names = append(names, "select", "order", "main.table")
		}
		for _, name := range names {
			s, err := sqlstore.New(db, d.dialect, sqlstore.WithTable(name))
			require.NoError(t, err)
			t.Cleanup(func() { _, _ = db.ExecContext(context.Background(), "DROP TABLE IF EXISTS "+s.Table()) })
			require.NoError(t, s.CreateTable(ctx), name)
			require.NoError(t, s.CreateTable(ctx), "CreateTable again")
			require.NoError(t, s.Set(ctx, "ns", "k", 3))
			st, err := s.Peek(ctx, "ns", "k")
			require.NoError(t, err)
			assert.Equal(t, revguard.State{Applied: 3, Exists: true}, st, "table %s", name)
		}
	})
}

// TestCreateTableConcurrently starts many processes' worth of CreateTable
// on one new table at once.
func TestCreateTableConcurrently(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, d database) {
		t.Parallel()
		db := d.open(t, "")
		s, err := sqlstore.New(db, d.dialect, sqlstore.WithTable("rgtest_"+randomHex(8)))
		require.NoError(t, err)
		t.Cleanup(func() { _, _ = db.ExecContext(context.Background(), "DROP TABLE IF EXISTS "+s.Table()) })
		var wg sync.WaitGroup
		errs := make(chan error, 6)
		for range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- s.CreateTable(context.Background())
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			assert.NoError(t, err)
		}
	})
}

// TestKeysRoundTrip stores keys and namespaces that break naive SQL, and
// reads the bytes back from the table as an operator would. (That every
// store keeps such keys apart is the conformance suite's Keys group.)
func TestKeysRoundTrip(t *testing.T) {
	var allBytes []byte
	for b := range 255 {
		allBytes = append(allBytes, byte(b))
	}
	keys := []string{
		`'`, `"`, "`", `\`, `''`, `\'`, "'; DROP TABLE users; --", `"); DROP TABLE users; --`, "$1", "?", "%s", "%",
		"nul\x00", "\x00", "\x00\x00\x00", "a\x00b",
		strings.Repeat("k", revguard.MaxKeyLen),
		strings.Repeat("k", revguard.MaxKeyLen-1) + "\x00",
		strings.Repeat("\x00", revguard.MaxKeyLen),
		strings.Repeat("€", revguard.MaxKeyLen/3),
		"trailing space ", "trailing space", "Case", "case",
	}
	namespaces := []string{"", "\x00", "\xff\xfe", string(allBytes), strings.Repeat("\xff", revguard.MaxNamespaceLen), "'", "ns\x00"}
	forEachDatabase(t, func(t *testing.T, d database) {
		t.Parallel()
		db := d.open(t, "")
		s := newStore(t, db, d.dialect)
		ctx := context.Background()
		rev := revguard.Revision(1)
		type place struct{ ns, key string }
		var places []place
		for _, ns := range namespaces {
			for _, k := range keys {
				places = append(places, place{ns, k})
				tok := newTokenT()
				res, err := s.Claim(ctx, revguard.Request{Namespace: ns, Key: k, Rev: rev, Token: tok, Lease: 60e9})
				require.NoError(t, err, "ns %q key %.20q", ns, k)
				require.Equal(t, revguard.Granted, res.Verdict, "ns %q key %.20q", ns, k)
				require.NoError(t, s.Commit(ctx, ns, k, tok))
				rev++
			}
		}
		// The table holds the bytes as they were given.
		rows, err := db.QueryContext(ctx, "SELECT namespace, entity_key FROM "+s.Table())
		require.NoError(t, err)
		stored := map[place]bool{}
		for rows.Next() {
			var ns, key []byte
			require.NoError(t, rows.Scan(&ns, &key))
			stored[place{string(ns), string(key)}] = true
		}
		require.NoError(t, rows.Err())
		_ = rows.Close()
		assert.Len(t, stored, len(places))
		for _, p := range places {
			assert.True(t, stored[p], "ns %q key %.20q not stored as given", p.ns, p.key)
		}
	})
}

// TestBadInputChangesNothing sends what the contract refuses to every
// method: each answers a clear error and the table stays empty.
func TestBadInputChangesNothing(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, d database) {
		t.Parallel()
		db := d.open(t, "")
		s := newStore(t, db, d.dialect)
		ctx := context.Background()
		longNS := strings.Repeat("n", revguard.MaxNamespaceLen+1)
		for _, c := range []struct {
			ns, key string
			want    error
		}{
			{"", "", revguard.ErrInvalidKey},
			{"", strings.Repeat("k", revguard.MaxKeyLen+1), revguard.ErrInvalidKey},
			{"", "\xff", revguard.ErrInvalidKey},
			{longNS, "k", nil},
		} {
			tok := newTokenT()
			req := revguard.Request{Namespace: c.ns, Key: c.key, Rev: 1, Token: tok, Lease: 60e9}
			check := func(what string, err error) {
				t.Helper()
				if assert.Error(t, err, "%s(ns of %d bytes, key %.20q)", what, len(c.ns), c.key) && c.want != nil {
					assert.ErrorIs(t, err, c.want, what)
				}
			}
			_, err := s.Claim(ctx, req)
			check("Claim", err)
			_, err = s.ClaimBatch(ctx, []revguard.Request{{Key: "fine", Rev: 1, Lease: 60e9}, req})
			check("ClaimBatch", err)
			_, err = s.Transact(ctx, req, func(context.Context) error { return nil })
			check("Transact", err)
			check("Commit", s.Commit(ctx, c.ns, c.key, tok))
			_, err = s.CommitBatch(ctx, []revguard.Commit{{Namespace: c.ns, Key: c.key, Token: tok}})
			check("CommitBatch", err)
			check("Renew", s.Renew(ctx, c.ns, c.key, tok, 60e9))
			check("Release", s.Release(ctx, c.ns, c.key, tok))
			check("Set", s.Set(ctx, c.ns, c.key, 1))
			check("Forget", s.Forget(ctx, c.ns, c.key))
			_, err = s.Peek(ctx, c.ns, c.key)
			check("Peek", err)
		}
		_, err := s.ClaimBatch(ctx, []revguard.Request{{Key: "twice", Rev: 1}, {Key: "other", Rev: 1}, {Key: "twice", Rev: 2}})
		assert.ErrorContains(t, err, "name the same entity")
		var n int
		require.NoError(t, db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+s.Table()).Scan(&n))
		assert.Zero(t, n, "rows stored by refused calls")
	})
}

// TestRevisionsReadable stores the edges of the uint64 range and reads them
// back with an operator's SELECT: exact, in decimal, and ordered by the
// database as numbers.
func TestRevisionsReadable(t *testing.T) {
	show := map[sqlstore.Dialect]string{
		sqlstore.Postgres: "SELECT convert_from(t.entity_key, 'UTF8'), t.applied::text FROM %s t ORDER BY t.applied",
		sqlstore.SQLite:   "SELECT CAST(t.entity_key AS TEXT), t.applied FROM %s t ORDER BY t.applied",
		sqlstore.MySQL:    "SELECT CAST(t.entity_key AS CHAR), CAST(t.applied AS CHAR) FROM %s t ORDER BY t.applied",
	}
	revs := []uint64{math.MaxUint64, 1 << 63, 1<<63 - 1, 1<<53 + 1, 1 << 53, 42, 0, math.MaxUint64 - 1}
	forEachDatabase(t, func(t *testing.T, d database) {
		t.Parallel()
		db := d.open(t, "")
		s := newStore(t, db, d.dialect)
		ctx := context.Background()
		for _, r := range revs {
			require.NoError(t, s.Set(ctx, "", fmt.Sprint("rev-", r), revguard.Revision(r)))
		}
		rows, err := db.QueryContext(ctx, fmt.Sprintf(show[d.dialect], s.Table()))
		require.NoError(t, err)
		defer rows.Close()
		var got []string
		for rows.Next() {
			var key, applied string
			require.NoError(t, rows.Scan(&key, &applied))
			t.Logf("%-26s applied = %s", key, applied)
			got = append(got, strings.TrimLeft(applied, "0"))
		}
		require.NoError(t, rows.Err())
		want := []string{"", "42", "9007199254740992", "9007199254740993", "9223372036854775807", "9223372036854775808",
			"18446744073709551614", "18446744073709551615"}
		assert.Equal(t, want, got, "applied revisions in the database's order")
	})
}

// TestCollisionRefused plants another entity's namespace and key on a
// row, as a SHA-256 collision would: every call on the original entity
// must refuse it rather than read or change the other's revision.
func TestCollisionRefused(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, d database) {
		if d.dialect == sqlstore.SQLite {
			t.Skip("SQLite keys rows by namespace and key themselves")
		}
		t.Parallel()
		db := d.open(t, "")
		s := newStore(t, db, d.dialect)
		ctx := context.Background()
		require.NoError(t, s.Set(ctx, "ns", "victim", 5))
		_, err := db.ExecContext(ctx, "UPDATE "+s.Table()+" SET entity_key = "+map[sqlstore.Dialect]string{
			sqlstore.Postgres: "'impostor'::bytea", sqlstore.MySQL: "'impostor'"}[d.dialect])
		require.NoError(t, err)
		_, err = s.Claim(ctx, revguard.Request{Namespace: "ns", Key: "victim", Rev: 6, Token: newTokenT(), Lease: 60e9})
		assert.ErrorContains(t, err, "belongs to another entity")
		_, err = s.Claim(ctx, revguard.Request{Namespace: "ns", Key: "victim", Rev: 6, Token: newTokenT(), Advance: true})
		assert.ErrorContains(t, err, "belongs to another entity")
		_, err = s.ClaimBatch(ctx, []revguard.Request{{Namespace: "ns", Key: "victim", Rev: 6, Lease: 60e9}, {Namespace: "ns", Key: "b", Rev: 1, Lease: 60e9}})
		assert.ErrorContains(t, err, "belongs to another entity")
		assert.ErrorContains(t, s.Set(ctx, "ns", "victim", 9), "belongs to another entity")
		st, err := s.Peek(ctx, "ns", "victim")
		require.NoError(t, err)
		assert.False(t, st.Exists)
		var applied string
		require.NoError(t, db.QueryRowContext(ctx, "SELECT CAST(applied AS CHAR(20)) FROM "+s.Table()+" WHERE entity_key = 'impostor'").Scan(&applied))
		assert.Equal(t, "5", strings.TrimSpace(applied), "the other entity's revision")
	})
}

// TestBatchesDoNotDeadlock runs batches over the same keys in opposite
// orders from several goroutines. On PostgreSQL, with retries off, a
// deadlock would surface as an error; elsewhere conflicts are retried and
// every batch must still complete.
func TestBatchesDoNotDeadlock(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, d database) {
		t.Parallel()
		db := d.open(t, "")
		db.SetMaxOpenConns(8)
		var opts []sqlstore.Option
		if d.dialect == sqlstore.Postgres {
			opts = append(opts, sqlstore.WithRetries(0))
		}
		s := newStore(t, db, d.dialect, opts...)
		ctx := context.Background()
		const workers, rounds, keys = 6, 8, 40
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for round := range rounds {
					reqs := make([]revguard.Request, keys)
					for k := range reqs {
						reqs[k] = revguard.Request{Key: fmt.Sprint("key-", k), Rev: revguard.Revision(round*workers + w + 1),
							Token: newTokenT(), Lease: 60e9}
					}
					if w%2 == 1 {
						slices.Reverse(reqs)
					}
					res, err := s.ClaimBatch(ctx, reqs)
					if err != nil {
						errs <- fmt.Errorf("worker %d round %d: ClaimBatch: %w", w, round, err)
						return
					}
					var commits []revguard.Commit
					for i, r := range res {
						if r.Verdict == revguard.Granted {
							commits = append(commits, revguard.Commit{Key: reqs[i].Key, Token: reqs[i].Token})
						}
					}
					if _, err := s.CommitBatch(ctx, commits); err != nil {
						errs <- fmt.Errorf("worker %d round %d: CommitBatch: %w", w, round, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}
