package proof

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/sqlstore"
)

func init() {
	backends = append(backends,
		backend{name: "sqlite", sql: true, open: func(t testing.TB, _ storeOpts) opened {
			path := filepath.Join(t.TempDir(), "proof.db")
			db := openDB(t, "sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)", "SQLite")
			return openSQL(t, db, sqlstore.SQLite)
		}},
		backend{name: "postgres", sql: true, open: func(t testing.TB, _ storeOpts) opened {
			dsn := server(t, envPostgres, "PostgreSQL")
			return openSQL(t, openDB(t, "pgx", dsn, "PostgreSQL"), sqlstore.Postgres)
		}},
		backend{name: "mariadb", sql: true, open: func(t testing.TB, _ storeOpts) opened {
			dsn := server(t, envMySQL, "MariaDB")
			return openSQL(t, openDB(t, "mysql", dsn, "MariaDB"), sqlstore.MySQL)
		}},
		// The same servers at the isolation levels that are not their
		// default (PostgreSQL's is READ COMMITTED, MariaDB's REPEATABLE
		// READ): the store sets none and must be right under each.
		backend{name: "postgres serializable", sql: true, variant: true, open: func(t testing.TB, _ storeOpts) opened {
			dsn := withParam(server(t, envPostgres, "PostgreSQL"), "default_transaction_isolation=serializable")
			return openSQL(t, openDB(t, "pgx", dsn, "PostgreSQL"), sqlstore.Postgres)
		}},
		backend{name: "mariadb read committed", sql: true, variant: true, open: func(t testing.TB, _ storeOpts) opened {
			dsn := withParam(server(t, envMySQL, "MariaDB"), "tx_isolation='READ-COMMITTED'")
			return openSQL(t, openDB(t, "mysql", dsn, "MariaDB"), sqlstore.MySQL)
		}},
		backend{name: "mariadb serializable", sql: true, variant: true, open: func(t testing.TB, _ storeOpts) opened {
			dsn := withParam(server(t, envMySQL, "MariaDB"), "tx_isolation='SERIALIZABLE'")
			return openSQL(t, openDB(t, "mysql", dsn, "MariaDB"), sqlstore.MySQL)
		}},
	)
}

// withParam adds a parameter (here: a session setting) to a DSN.
func withParam(dsn, param string) string {
	if strings.Contains(dsn, "?") {
		return dsn + "&" + param
	}
	return dsn + "?" + param
}

func openDB(t testing.TB, driver, dsn, what string) *sql.DB {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatalf("opening %s: %v", what, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		t.Fatalf("%s does not answer: %v", what, err)
	}
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(32)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// openSQL returns a store on a table of its own in db, dropped when t ends.
func openSQL(t testing.TB, db *sql.DB, d sqlstore.Dialect) opened {
	t.Helper()
	table := unique("proof_")
	s, err := sqlstore.New(db, d, sqlstore.WithTable(table))
	if err != nil {
		t.Fatalf("sqlstore.New: %v", err)
	}
	ctx := context.Background()
	if err := s.CreateTable(ctx); err != nil {
		t.Fatalf("CreateTable: %v", err)
	}
	t.Cleanup(func() {
		for _, tb := range []string{table, table + "_fx"} {
			_, _ = db.ExecContext(context.Background(), "DROP TABLE IF EXISTS "+tb)
		}
	})
	return opened{store: s, slack: 10 * time.Millisecond, effects: func(t testing.TB) effectLog {
		fx := &sqlEffects{db: db, d: d, table: table + "_fx"}
		fx.create(t)
		return fx
	}}
}

// sqlEffects is a table the Transactional handlers write their completions
// to, inside the transaction sqlstore runs them in: a completion counts only
// if its transaction committed. The id orders completions as they
// committed, since one entity's transactions queue on its revision row.
type sqlEffects struct {
	db    *sql.DB
	d     sqlstore.Dialect
	table string
}

func (fx *sqlEffects) create(t testing.TB) {
	var ddl string
	switch fx.d {
	case sqlstore.Postgres:
		ddl = "CREATE TABLE %s (id BIGSERIAL PRIMARY KEY, k TEXT NOT NULL, rev BIGINT NOT NULL)"
	case sqlstore.SQLite:
		ddl = "CREATE TABLE %s (id INTEGER PRIMARY KEY AUTOINCREMENT, k TEXT NOT NULL, rev INTEGER NOT NULL)"
	default:
		ddl = "CREATE TABLE %s (id BIGINT AUTO_INCREMENT PRIMARY KEY, k VARCHAR(64) NOT NULL, rev BIGINT NOT NULL) ENGINE=InnoDB"
	}
	if _, err := fx.db.ExecContext(context.Background(), fmt.Sprintf(ddl, fx.table)); err != nil {
		t.Fatalf("creating %s: %v", fx.table, err)
	}
}

func (fx *sqlEffects) record(ctx context.Context, key string, rev revguard.Revision) error {
	tx := sqlstore.TxFrom(ctx)
	if tx == nil {
		return errors.New("proof: the handler runs in no transaction")
	}
	q := "INSERT INTO " + fx.table + " (k, rev) VALUES (?, ?)"
	if fx.d == sqlstore.Postgres {
		q = strings.NewReplacer("?, ?", "$1, $2").Replace(q)
	}
	_, err := tx.ExecContext(ctx, q, key, int64(rev))
	return err
}

func (fx *sqlEffects) read(ctx context.Context) (map[string][]revguard.Revision, error) {
	rows, err := fx.db.QueryContext(ctx, "SELECT k, rev FROM "+fx.table+" ORDER BY id")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]revguard.Revision{}
	for rows.Next() {
		var k string
		var r int64
		if err := rows.Scan(&k, &r); err != nil {
			return nil, err
		}
		out[k] = append(out[k], revguard.Revision(r))
	}
	return out, rows.Err()
}
