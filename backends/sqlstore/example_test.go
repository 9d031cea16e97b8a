package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/sqlstore"
)

// Credit adds cents to an account; Seq numbers the account's credits.
type Credit struct {
	Account string
	Seq     uint64
	Cents   int64
}

// The Transactional mode: the handler's write and the event's revision
// commit in one transaction, so a redelivered credit is never counted twice
// and a failed one leaves no trace.
func Example_transactional() {
	dir, _ := os.MkdirTemp("", "sqlstore-example-")
	defer os.RemoveAll(dir)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "bank.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		panic(err)
	}
	defer db.Close()
	ctx := context.Background()

	store, err := sqlstore.New(db, sqlstore.SQLite)
	if err != nil {
		panic(err)
	}
	if err := store.CreateTable(ctx); err != nil {
		panic(err)
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE balances (account TEXT PRIMARY KEY, cents INTEGER NOT NULL)`); err != nil {
		panic(err)
	}

	// snippet:sqlstore-transactional
	g := revguard.New(store,
		func(c Credit) (string, revguard.Revision, error) { return c.Account, revguard.Revision(c.Seq), nil },
		revguard.WithMode(revguard.Transactional),
		revguard.WithOrdering(revguard.Sequential))
	credit := func(ctx context.Context, c Credit) error {
		_, err := sqlstore.TxFrom(ctx).ExecContext(ctx,
			`INSERT INTO balances (account, cents) VALUES (?, ?)
			 ON CONFLICT (account) DO UPDATE SET cents = cents + excluded.cents`, c.Account, c.Cents)
		return err
	}
	// snippet:end

	for _, c := range []Credit{
		{"alice", 1, 500},
		{"alice", 1, 500}, // redelivered
		{"alice", 3, 200}, // early: its predecessor has not arrived
		{"alice", 2, 100},
		{"alice", 3, 200}, // redelivered after the gap
	} {
		out, err := g.Handle(ctx, c, credit)
		if err != nil {
			fmt.Printf("credit %d: not acknowledged (%v)\n", c.Seq, reason(err))
			continue
		}
		fmt.Printf("credit %d: %s\n", c.Seq, out)
	}

	var cents int64
	if err := db.QueryRowContext(ctx, `SELECT cents FROM balances WHERE account = 'alice'`).Scan(&cents); err != nil {
		panic(err)
	}
	fmt.Println("balance:", cents)
	// Output:
	// credit 1: applied
	// credit 1: duplicate
	// credit 3: not acknowledged (gap)
	// credit 2: applied
	// credit 3: applied
	// balance: 800
}

// reason says why a credit was not acknowledged.
func reason(err error) string {
	if errors.Is(err, revguard.ErrGap) {
		return "gap"
	}
	return err.Error()
}
