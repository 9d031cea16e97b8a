package sqlstore_test

import (
	"context"
	"database/sql"
	"log"
	"os"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/sqlstore"
)

// A store on PostgreSQL through pgx's database/sql driver. It needs a
// server, so it is compiled but not run.
func Example_postgres() {
	ctx := context.Background()
	extract := func(c Credit) (string, revguard.Revision, error) { return c.Account, revguard.Revision(c.Seq), nil }

	// snippet:sqlstore-postgres
	db, err := sql.Open("pgx", os.Getenv("DATABASE_URL")) // import _ "github.com/jackc/pgx/v5/stdlib"
	if err != nil {
		log.Fatal(err)
	}
	store, err := sqlstore.New(db, sqlstore.Postgres) // or sqlstore.SQLite, sqlstore.MySQL
	if err != nil {
		log.Fatal(err)
	}
	if err := store.CreateTable(ctx); err != nil { // idempotent
		log.Fatal(err)
	}
	g := revguard.New(store, extract)
	// snippet:end
	_ = g
}
