package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/redisstore"
	"github.com/revguard/revguard/backends/sqlstore"
)

// storeFlags name the store and the part of it a command works on.
type storeFlags struct {
	url       string
	namespace string
	table     string
	prefix    string
	timeout   time.Duration
}

// envStore is the variable -store defaults to, so that a URL with a
// password need not stand in the shell's history or in ps.
const envStore = "REVGUARD_STORE"

func (f *storeFlags) register(fs *flag.FlagSet, namespace bool) {
	fs.StringVar(&f.url, "store", os.Getenv(envStore), "the store's `URL` (see revguard help); the default is $"+envStore)
	if namespace {
		fs.StringVar(&f.namespace, "namespace", "", "the consumers' `namespace` (revguard.WithNamespace); the default is the empty one")
	}
	fs.StringVar(&f.prefix, "prefix", redisstore.DefaultPrefix, "Redis stores: the key `prefix` (redisstore.WithPrefix)")
	fs.StringVar(&f.table, "table", sqlstore.DefaultTable, "SQL stores: the `table`, optionally schema.table (sqlstore.WithTable)")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "give up on a store that does not answer within this `duration`: connecting, each of get, set, forget and preflight, each request of watch -metrics")
}

// target is an open store, with what a command may need beside it.
type target struct {
	store revguard.Store
	desc  string // the URL as given, its password hidden
	close func()

	rdb     redis.UniversalClient // Redis stores
	db      *sql.DB               // SQL stores
	dialect sqlstore.Dialect
	table   string // SQL stores: the table, quoted
}

// kind returns the family of store, for messages.
func (t *target) kind() string {
	if t.rdb != nil {
		return "Redis"
	}
	return t.dialect.String()
}

// open opens the store f names and checks that it answers. A URL that
// cannot be read, or a flag that does not fit the store, is a usage error.
func (f *storeFlags) open(ctx context.Context, given map[string]bool) (*target, error) {
	if f.url == "" {
		return nil, usagef("-store is required (or set $%s): for example -store redis://localhost:6379", envStore)
	}
	loc, err := parseLocation(f.url)
	if err != nil {
		return nil, err
	}
	if loc.redis != nil && given["table"] {
		return nil, usagef("-table is for SQL stores; %s is Redis, whose keys -prefix names", loc.desc)
	}
	if loc.redis == nil && given["prefix"] {
		return nil, usagef("-prefix is for Redis stores; %s is SQL, whose table -table names", loc.desc)
	}
	var t *target
	if loc.redis != nil {
		t, err = f.openRedis(loc)
	} else {
		t, err = f.openSQL(loc)
	}
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	if err := t.ping(ctx); err != nil {
		t.close()
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no answer within -timeout %s (%w)", f.timeout, err)
		}
		return nil, fmt.Errorf("cannot reach the %s store at %s: %w", t.kind(), t.desc, err)
	}
	return t, nil
}

func (f *storeFlags) openRedis(loc *location) (*target, error) {
	if strings.ContainsAny(f.prefix, "{}") {
		return nil, usagef("-prefix %q: a prefix may not contain '{' or '}'", f.prefix)
	}
	rdb := loc.redis()
	return &target{
		store: redisstore.New(rdb, redisstore.WithPrefix(f.prefix)),
		desc:  loc.desc,
		close: func() { _ = rdb.Close() },
		rdb:   rdb,
	}, nil
}

func (f *storeFlags) openSQL(loc *location) (*target, error) {
	db, err := loc.sql()
	if err != nil {
		return nil, err
	}
	s, err := sqlstore.New(db, loc.dialect, sqlstore.WithTable(f.table))
	if err != nil {
		_ = db.Close()
		return nil, usagef("-table: %v", err)
	}
	return &target{store: s, desc: loc.desc, close: func() { _ = db.Close() }, db: db, dialect: loc.dialect, table: s.Table()}, nil
}

func (t *target) ping(ctx context.Context) error {
	if t.rdb != nil {
		return t.rdb.Ping(ctx).Err()
	}
	return t.db.PingContext(ctx)
}

// openInspector opens the store as a revguard.Inspector, which get, scan
// and watch read through.
func (f *storeFlags) openInspector(ctx context.Context, given map[string]bool) (*target, revguard.Inspector, error) {
	t, err := f.open(ctx, given)
	if err != nil {
		return nil, nil, err
	}
	in, ok := t.store.(revguard.Inspector)
	if !ok {
		t.close()
		return nil, nil, fmt.Errorf("%T cannot list what it holds (it does not implement revguard.Inspector)", t.store)
	}
	return t, in, nil
}

// read returns what the store holds for key, with the claim in force when
// the store can tell.
func (t *target) read(ctx context.Context, ns, key string) (revguard.Entity, error) {
	if in, ok := t.store.(revguard.Inspector); ok {
		return in.Inspect(ctx, ns, key)
	}
	st, err := t.store.Peek(ctx, ns, key)
	return revguard.Entity{Key: key, State: st}, err
}

// explain adds to a store's error what an operator can do about it.
func explain(err error) error {
	if errors.Is(err, redisstore.ErrCorrupt) {
		return fmt.Errorf("%w (this key was not written by revguard: check -prefix and -namespace; repair it with revguard set or forget, or delete it)", err)
	}
	return err
}
