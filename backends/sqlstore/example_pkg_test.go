package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/sqlstore"
)

// Example keeps a consumer's applied revisions in SQLite. PostgreSQL and
// MariaDB differ only in the driver, the DSN and the Dialect given to New;
// the program imports the driver, the store imports none.
func Example() {
	dir, err := os.MkdirTemp("", "sqlstore-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "revisions.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		panic(err)
	}
	defer db.Close()
	ctx := context.Background()

	store, err := sqlstore.New(db, sqlstore.SQLite)
	if err != nil {
		panic(err)
	}
	if err := store.CreateTable(ctx); err != nil { // idempotent: safe at every start
		panic(err)
	}

	type OrderPaid struct {
		Order string
		Rev   revguard.Revision
	}
	g := revguard.New(store, func(e OrderPaid) (string, revguard.Revision, error) { return e.Order, e.Rev, nil })
	for _, e := range []OrderPaid{{"order:1", 2}, {"order:1", 2}, {"order:1", 1}, {"order:1", 3}} {
		out, err := g.Handle(ctx, e, func(ctx context.Context, e OrderPaid) error {
			fmt.Println("handling", e.Order, "revision", e.Rev)
			return nil
		})
		fmt.Println(out, err)
	}

	// What an operator's SELECT shows: SQLite keeps revisions as zero-padded
	// text, which orders as the numbers do.
	var key, applied string
	if err := db.QueryRowContext(ctx, `SELECT CAST(entity_key AS TEXT), applied FROM revguard_revisions`).Scan(&key, &applied); err != nil {
		panic(err)
	}
	fmt.Println(key, applied)
	// Output:
	// handling order:1 revision 2
	// applied <nil>
	// duplicate <nil>
	// stale <nil>
	// handling order:1 revision 3
	// applied <nil>
	// order:1 00000000000000000003
}
