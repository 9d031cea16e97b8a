package sqlstore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/sqlstore"
)

// rowID is the id column of an entity's row on PostgreSQL, as the package
// documentation defines it.
func rowID(ns, key string) []byte {
	h := sha256.Sum256(append(append([]byte{byte(len(ns))}, ns...), key...))
	return h[:]
}

// TestPostgresRetryKeepsWhatTookEffect is the regression test for the
// non-linearizable histories the proof found at SERIALIZABLE isolation. A
// batch whose requests differ in shape runs one statement per shape, each
// committing on its own. When a later statement fails with a serialization
// failure, the store runs the call again; it used to run it again whole,
// so an advance that an earlier statement had recorded ran a second time
// and, with the entity advanced further in between, answered Stale: the
// event was dropped, its handler never ran, and no error said so.
//
// Here the batch advances a (Latest) and b (Sequential). a's statement
// runs first, since a's row sorts first, and takes effect; b's waits on a
// row lock that another transaction holds while it changes b's row, and
// fails with SQLSTATE 40001 when that transaction commits. Meanwhile
// another consumer advances a past the batch's revision.
func TestPostgresRetryKeepsWhatTookEffect(t *testing.T) {
	open := openServer("pgx", envPostgres, "PostgreSQL", "?")
	db := open(t, "default_transaction_isolation=serializable")
	if got := isolation(t, db, sqlstore.Postgres); got != "serializable" {
		t.Fatalf("session isolation is %q; want serializable", got)
	}
	other := open(t, "")

	t.Run("retries=0", func(t *testing.T) {
		// Without retries the conflict shows as the error: the scenario
		// does make the database abort b's statement.
		s := newStore(t, db, sqlstore.Postgres, sqlstore.WithRetries(0))
		_, err := overtakenBatch(t, s, other)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "40001")
	})
	t.Run("retries=10", func(t *testing.T) {
		s := newStore(t, db, sqlstore.Postgres)
		out, err := overtakenBatch(t, s, other)
		require.NoError(t, err)
		assert.Equal(t, revguard.Reply{Verdict: revguard.Granted, State: revguard.State{Applied: 5, Exists: true}}, out[0],
			"a: its advance took effect before the conflict; the retry must not decide it again")
		assert.Equal(t, revguard.Reply{Verdict: revguard.Granted, State: revguard.State{Applied: 0, Exists: true}}, out[1], "b")
	})
}

// overtakenBatch runs the scenario of TestPostgresRetryKeepsWhatTookEffect
// on s, with other as the connection of the transaction that holds b's
// row, and returns the batch's answer.
func overtakenBatch(t *testing.T, s *sqlstore.Store, other *sql.DB) ([]revguard.Reply, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ns := "retry-" + randomHex(4)
	b := "b"
	a := ""
	for i := 0; a == ""; i++ {
		if k := fmt.Sprintf("a%d", i); bytes.Compare(rowID(ns, k), rowID(ns, b)) < 0 {
			a = k
		}
	}
	require.NoError(t, s.Set(ctx, ns, a, 5))
	require.NoError(t, s.Set(ctx, ns, b, 0))

	tx, err := other.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback() }()
	_, err = tx.ExecContext(ctx, "UPDATE "+s.Table()+" SET prev_applied = applied WHERE namespace = $1 AND entity_key = $2", []byte(ns), []byte(b))
	require.NoError(t, err)
	var xid string
	require.NoError(t, tx.QueryRowContext(ctx, "SELECT pg_current_xact_id()::text").Scan(&xid))

	type answer struct {
		out []revguard.Reply
		err error
	}
	done := make(chan answer, 1)
	go func() {
		out, err := s.ClaimBatch(ctx, []revguard.Request{
			{Namespace: ns, Key: a, Rev: 10, Token: newTokenT(), Advance: true},
			{Namespace: ns, Key: b, Rev: 1, Token: newTokenT(), Advance: true, Sequential: true, First: 1},
		})
		done <- answer{out, err}
	}()

	// a's advance has taken effect once its row says so; the batch is
	// then waiting on b's row.
	for {
		st, err := s.Peek(ctx, ns, a)
		require.NoError(t, err)
		if st.Applied == 10 {
			break
		}
		select {
		case r := <-done:
			t.Fatalf("the batch returned (%v, %v) while b's row was locked", r.out, r.err)
		case <-time.After(time.Millisecond):
		}
	}
	// Only a statement already waiting for b's row meets the conflict: one
	// that began after the commit below would see the new row and pass.
	for waiting := 0; waiting == 0; {
		require.NoError(t, other.QueryRowContext(ctx,
			"SELECT count(*) FROM pg_locks WHERE locktype = 'transactionid' AND NOT granted AND transactionid::text = $1", xid).Scan(&waiting))
		select {
		case r := <-done:
			t.Fatalf("the batch returned (%v, %v) while b's row was locked", r.out, r.err)
		case <-time.After(time.Millisecond):
		}
	}
	r, err := s.Claim(ctx, revguard.Request{Namespace: ns, Key: a, Rev: 11, Token: newTokenT(), Advance: true})
	require.NoError(t, err)
	require.Equal(t, revguard.Granted, r.Verdict, "the other consumer's advance of a")
	select {
	case r := <-done:
		t.Fatalf("the batch returned (%v, %v) while b's row was locked", r.out, r.err)
	default:
	}
	require.NoError(t, tx.Commit())

	res := <-done
	if res.err != nil && !strings.Contains(res.err.Error(), "40001") {
		t.Fatalf("ClaimBatch: %v, want nil or a serialization failure", res.err)
	}
	return res.out, res.err
}
