package sqlstore_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/sqlstore"
	"github.com/revguard/revguard/internal/testenv"
)

const (
	envPostgres = testenv.Postgres
	envMySQL    = testenv.MySQL
)

// database is one dialect a test runs on, and how to open it.
type database struct {
	name    string
	dialect sqlstore.Dialect
	// open returns a handle that t closes when it ends; extra is a DSN
	// parameter (a session setting) or "".
	open func(t testing.TB, extra string) *sql.DB
}

// databases are SQLite, always, and the servers when their variables are
// set. A missing server becomes a skipped (or failed) subtest.
var databases = []database{
	{"SQLite", sqlstore.SQLite, openSQLite},
	{"Postgres", sqlstore.Postgres, openServer("pgx", envPostgres, "PostgreSQL", "?")},
	{"MySQL", sqlstore.MySQL, openServer("mysql", envMySQL, "MariaDB", "?")},
}

func forEachDatabase(t *testing.T, run func(t *testing.T, db database)) {
	for _, d := range databases {
		t.Run(d.name, func(t *testing.T) { run(t, d) })
	}
}

// openSQLite opens a fresh database file: WAL lets readers and the one
// writer overlap, and the busy timeout makes writers queue rather than fail.
func openSQLite(t testing.TB, extra string) *sql.DB {
	path := filepath.Join(t.TempDir(), "revguard.db")
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)"
	if extra != "" {
		dsn += "&" + extra
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatalf("opening SQLite: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func openServer(driver, env, what, sep string) func(t testing.TB, extra string) *sql.DB {
	return func(t testing.TB, extra string) *sql.DB {
		t.Helper()
		dsn := testenv.Server(t, env, what)
		if extra != "" {
			if strings.Contains(dsn, "?") {
				sep = "&"
			}
			dsn += sep + extra
		}
		db, err := sql.Open(driver, dsn)
		if err != nil {
			t.Fatalf("opening %s: %v", what, err)
		}
		if err := db.PingContext(context.Background()); err != nil {
			t.Fatalf("%s at %s=%s does not answer: %v", what, env, os.Getenv(env), err)
		}
		t.Cleanup(func() { _ = db.Close() })
		return db
	}
}

func randomHex(n int) string { return testenv.Unique("", n) }

// newStore makes a store on a table of its own, dropped when t ends, since
// other packages' tests share the servers.
func newStore(t testing.TB, db *sql.DB, d sqlstore.Dialect, opts ...sqlstore.Option) *sqlstore.Store {
	t.Helper()
	table := "rgtest_" + randomHex(8)
	s, err := sqlstore.New(db, d, append([]sqlstore.Option{sqlstore.WithTable(table)}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := s.CreateTable(context.Background()); err != nil {
		t.Fatalf("CreateTable: %v", err)
	}
	t.Cleanup(func() {
		if _, err := db.ExecContext(context.Background(), "DROP TABLE IF EXISTS "+s.Table()); err != nil {
			t.Errorf("dropping %s: %v", s.Table(), err)
		}
	})
	return s
}

func newTokenT() revguard.Token {
	var tok revguard.Token
	if _, err := rand.Read(tok[:]); err != nil {
		panic(err)
	}
	tok[0] |= 1
	return tok
}
