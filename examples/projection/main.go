// Projection keeps an event-sourced read model of bank accounts exactly
// once, with revguard's Transactional mode: each event's balance change and
// its revision commit in one database transaction, or neither does.
//
//	go run ./examples/projection                      # a temporary SQLite file
//	go run ./examples/projection -dsn "$REVGUARD_POSTGRES_DSN"
//
// It generates a stream of AccountCreated, Credited and Debited events, each
// account's events numbered 1, 2, 3... (the revision). It replays the stream
// once in order into a reference table, then again into the projection the
// way an at-least-once transport delivers it: every event up to three times,
// shuffled, by several workers at once. Sequential ordering applies only the
// next revision of an account; a delivery that arrives early gets ErrGap and
// goes back on the queue, as a transport redelivers an unacknowledged
// message. Some handlers fail after writing, to show that their writes roll
// back with the revision and the redelivery applies them once.
//
// The program prints each account's balance and exits with status 1 if the
// projection differs from the reference or from the balances computed from
// the stream in memory. Its tables get a per-run suffix and are dropped at
// the end.
package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/sqlstore"
)

// Kind is what happened to an account.
type Kind string

const (
	AccountCreated Kind = "AccountCreated"
	Credited       Kind = "Credited"
	Debited        Kind = "Debited"
)

// Event is one change to an account. Seq numbers an account's events from 1
// (its AccountCreated) and is the revision.
type Event struct {
	Account string
	Seq     uint64
	Kind    Kind
	Owner   string // AccountCreated
	Amount  int64  // opening balance, credit or debit, in cents
}

func extract(e Event) (string, revguard.Revision, error) {
	return revguard.Key("account", e.Account), revguard.Revision(e.Seq), nil
}

func main() {
	dsn := flag.String("dsn", "", "PostgreSQL connection string for the pgx driver; empty uses a temporary SQLite file")
	accounts := flag.Int("accounts", 6, "number of accounts")
	events := flag.Int("events", 40, "events per account, its AccountCreated included")
	workers := flag.Int("workers", 4, "concurrent consumers of the shuffled replay")
	fail := flag.Float64("fail", 0.05, "share of first deliveries whose handler fails after writing")
	seed := flag.Uint64("seed", 1, "seed of the generated stream and its shuffle")
	flag.Parse()
	if *accounts < 1 || *events < 1 || *workers < 1 {
		fmt.Fprintln(os.Stderr, "projection: -accounts, -events and -workers must be at least 1")
		os.Exit(2)
	}
	if err := run(*dsn, *accounts, *events, *workers, *fail, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "projection:", err)
		os.Exit(1)
	}
}

func run(dsn string, accounts, perAccount, workers int, fail float64, seed uint64) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db, dialect, where, done, err := open(dsn)
	if err != nil {
		return err
	}
	defer done()

	suffix := runSuffix()
	store, err := sqlstore.New(db, dialect, sqlstore.WithTable("revguard_example_revisions_"+suffix))
	if err != nil {
		return err
	}
	reference := &projection{db: db, d: dialect, table: "revguard_example_reference_" + suffix}
	live := &projection{db: db, d: dialect, table: "revguard_example_accounts_" + suffix}
	defer func() {
		for _, table := range []string{store.Table(), reference.table, live.table} {
			_, _ = db.ExecContext(context.Background(), "DROP TABLE IF EXISTS "+table)
		}
	}()
	if err := store.CreateTable(ctx); err != nil {
		return err
	}
	for _, p := range []*projection{reference, live} {
		if err := p.create(ctx); err != nil {
			return err
		}
	}

	rng := mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	stream := generate(rng, accounts, perAccount)
	want := fold(stream)
	fmt.Printf("%d events for %d accounts on %s\n", len(stream), accounts, where)

	// The reference: the stream once, in order, as a fresh consumer sees it.
	ref := guard(store, "reference")
	for _, e := range stream {
		out, err := ref.Handle(ctx, e, reference.apply)
		if err != nil || out != revguard.Applied {
			return fmt.Errorf("in-order replay of %s #%d: %v, %v; want applied", e.Account, e.Seq, out, err)
		}
	}

	st, err := replay(ctx, guard(store, "projection"), live, stream, rng, workers, fail)
	if err != nil {
		return err
	}
	fmt.Printf("shuffled replay: %d deliveries, %d applied, %d duplicates, %d redelivered early (gap), %d handler failures rolled back\n\n",
		st.deliveries, st.applied, st.dropped, st.gaps, st.failures)

	got, err := live.balances(ctx)
	if err != nil {
		return err
	}
	refGot, err := reference.balances(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("%-10s %-8s %6s %12s %12s\n", "account", "owner", "events", "balance", "in order")
	var bad []string
	for i := range accounts {
		id := accountID(i)
		g, r, w := got[id], refGot[id], want[id]
		mark := ""
		if g != r || g != w {
			mark = "  <- differs"
			bad = append(bad, fmt.Sprintf("%s: projection %+v, in-order replay %+v, computed %+v", id, g, r, w))
		}
		fmt.Printf("%-10s %-8s %6d %12s %12s%s\n", id, g.owner, g.events, cents(g.balance), cents(r.balance), mark)
	}
	if len(bad) > 0 || len(got) != accounts {
		return fmt.Errorf("the shuffled replay does not match the in-order one:\n%s", strings.Join(bad, "\n"))
	}
	fmt.Println("\nthe shuffled, duplicated replay matches the in-order replay")
	return nil
}

// open connects to PostgreSQL when dsn is set, else to a new SQLite file.
// SQLite has one writer at a time, so one connection serves it best: the
// transactions queue in database/sql instead of polling a locked file. WAL
// and the busy timeout are for anyone else who opens the file meanwhile.
func open(dsn string) (db *sql.DB, d sqlstore.Dialect, where string, done func(), err error) {
	if dsn != "" {
		db, err = sql.Open("pgx", dsn)
		if err == nil {
			err = db.Ping()
		}
		return db, sqlstore.Postgres, "PostgreSQL", func() { _ = db.Close() }, err
	}
	dir, err := os.MkdirTemp("", "revguard-projection-")
	if err != nil {
		return nil, 0, "", nil, err
	}
	path := filepath.Join(dir, "projection.db")
	db, err = sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, 0, "", nil, err
	}
	db.SetMaxOpenConns(1)
	return db, sqlstore.SQLite, "SQLite " + path, func() { _ = db.Close(); _ = os.RemoveAll(dir) }, nil
}

func runSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// snippet:projection-guard

func guard(store *sqlstore.Store, namespace string) *revguard.Guard[Event] {
	return revguard.New(store, extract,
		revguard.WithNamespace(namespace),
		revguard.WithMode(revguard.Transactional),
		revguard.WithOrdering(revguard.Sequential))
}

// snippet:end

func accountID(i int) string { return fmt.Sprintf("acct-%02d", i+1) }

var owners = []string{"ada", "brian", "cleo", "dmitri", "eun-ji", "farah", "goran", "hana"}

// generate returns each account's events in order, accounts interleaved.
// A debit never takes a balance below zero.
func generate(rng *mrand.Rand, accounts, perAccount int) []Event {
	var stream []Event
	balance := make([]int64, accounts)
	for seq := 1; seq <= perAccount; seq++ {
		for i := range accounts {
			e := Event{Account: accountID(i), Seq: uint64(seq)}
			amount := int64(rng.IntN(50_00) + 1)
			switch {
			case seq == 1:
				e.Kind, e.Owner, e.Amount = AccountCreated, owners[i%len(owners)], 100_00
			case rng.IntN(3) == 0 && balance[i] >= amount:
				e.Kind, e.Amount = Debited, amount
			default:
				e.Kind, e.Amount = Credited, amount
			}
			balance[i] += e.signed()
			stream = append(stream, e)
		}
	}
	return stream
}

func (e Event) signed() int64 {
	if e.Kind == Debited {
		return -e.Amount
	}
	return e.Amount
}

// account is one row of a projection.
type account struct {
	owner   string
	balance int64
	events  int64
}

// fold computes the balances from the stream in memory.
func fold(stream []Event) map[string]account {
	m := map[string]account{}
	for _, e := range stream {
		a := m[e.Account]
		if e.Kind == AccountCreated {
			a.owner = e.Owner
		}
		a.balance += e.signed()
		a.events++
		m[e.Account] = a
	}
	return m
}

// stats counts what the shuffled replay did.
type stats struct {
	deliveries, applied, dropped, gaps, failures int
}

var errInjected = errors.New("handler failed after writing (injected)")

// replay delivers every event one to three times, shuffled, to workers
// that put a delivery back on the queue when the guard says it is not to
// be acknowledged: an early revision (ErrGap) or a failed handler. Any
// other error ends the replay.
func replay(ctx context.Context, g *revguard.Guard[Event], p *projection, stream []Event, rng *mrand.Rand, workers int, fail float64) (stats, error) {
	var queue []Event
	for _, e := range stream {
		for range 1 + rng.IntN(3) {
			queue = append(queue, e)
		}
	}
	rng.Shuffle(len(queue), func(i, j int) { queue[i], queue[j] = queue[j], queue[i] })
	failing := map[Event]bool{}
	for _, e := range stream {
		if rng.Float64() < fail {
			failing[e] = true
		}
	}

	var (
		mu      sync.Mutex
		st      stats
		firstEr error
		wg      sync.WaitGroup
	)
	take := func() (Event, bool) {
		mu.Lock()
		defer mu.Unlock()
		if len(queue) == 0 || firstEr != nil {
			return Event{}, false
		}
		e := queue[0]
		queue = queue[1:]
		st.deliveries++
		return e, true
	}
	// failOnce reports whether e's handler is to fail this time, the first
	// time it runs.
	failOnce := func(e Event) bool {
		mu.Lock()
		defer mu.Unlock()
		f := failing[e]
		delete(failing, e)
		return f
	}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				e, ok := take()
				if !ok {
					return
				}
				out, err := g.Handle(ctx, e, func(ctx context.Context, e Event) error {
					if err := p.apply(ctx, e); err != nil {
						return err
					}
					if failOnce(e) {
						return errInjected
					}
					return nil
				})
				mu.Lock()
				switch act, _ := revguard.Disposition(err); {
				case act == revguard.Ack && out == revguard.Applied:
					st.applied++
				case act == revguard.Ack:
					st.dropped++
				case act == revguard.RetryLater:
					st.gaps++
					queue = append(queue, e) // not acknowledged: it comes back later
				case errors.Is(err, errInjected):
					st.failures++
					queue = append(queue, e)
				default:
					if firstEr == nil {
						firstEr = fmt.Errorf("%s #%d: %w", e.Account, e.Seq, err)
					}
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(time.Millisecond) // a transport's redelivery delay
				}
			}
		}()
	}
	wg.Wait()
	return st, firstEr
}

// projection is a table of account balances that handlers keep in the
// guard's transaction.
type projection struct {
	db    *sql.DB
	d     sqlstore.Dialect
	table string
}

func (p *projection) create(ctx context.Context) error {
	_, err := p.db.ExecContext(ctx, "CREATE TABLE "+p.table+
		" (id VARCHAR(64) PRIMARY KEY, owner VARCHAR(64) NOT NULL, balance BIGINT NOT NULL, events BIGINT NOT NULL)")
	return err
}

// sql rewrites ? placeholders as $1, $2... for PostgreSQL.
func (p *projection) sql(query string) string {
	if p.d != sqlstore.Postgres {
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

// apply is the handler: it changes the account in the transaction that
// records the event's revision.
func (p *projection) apply(ctx context.Context, e Event) error {
	tx := sqlstore.TxFrom(ctx)
	if tx == nil {
		return errors.New("no transaction: the guard is not in the Transactional mode")
	}
	var res sql.Result
	var err error
	if e.Kind == AccountCreated {
		res, err = tx.ExecContext(ctx, p.sql("INSERT INTO "+p.table+" (id, owner, balance, events) VALUES (?, ?, ?, 1)"),
			e.Account, e.Owner, e.Amount)
	} else {
		res, err = tx.ExecContext(ctx, p.sql("UPDATE "+p.table+" SET balance = balance + ?, events = events + 1 WHERE id = ?"),
			e.signed(), e.Account)
	}
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("%s #%d %s changed %d rows (%v); want 1", e.Account, e.Seq, e.Kind, n, err)
	}
	return nil
}

func (p *projection) balances(ctx context.Context) (map[string]account, error) {
	rows, err := p.db.QueryContext(ctx, "SELECT id, owner, balance, events FROM "+p.table) //nolint:gosec // G202: the program's own table name
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	m := map[string]account{}
	for rows.Next() {
		var id string
		var a account
		if err := rows.Scan(&id, &a.owner, &a.balance, &a.events); err != nil {
			return nil, err
		}
		m[id] = a
	}
	return m, rows.Err()
}

func cents(c int64) string { return fmt.Sprintf("%d.%02d", c/100, c%100) }
