// Command revguard shows and repairs what a revguard store holds, for
// operators: each entity's applied revision and the claim in force on it.
//
//	cd cmd/revguard && go install .   # a module of its own, in this repository
//	revguard get -store redis://localhost:6379 -namespace orders order:42
//
// Usage:
//
//	revguard COMMAND -store URL [-namespace NS] [flags] ARGS
//
// Flags may stand before or after the arguments; after "--" everything is
// an argument (a key that starts with '-'). -store defaults to
// $REVGUARD_STORE, which keeps a password out of the shell's history and
// of ps. -namespace is the consumers' revguard.WithNamespace (the default
// is the empty namespace); -prefix (Redis, default "revguard:") and -table
// (SQL, default "revguard_revisions", or schema.table) are the stores'
// WithPrefix and WithTable, and must match what the consumers use. -timeout
// (default 10s) bounds connecting, each of get, set, forget and preflight,
// and each request of watch -metrics.
//
// # Stores
//
// The -store URL says which store and how to reach it:
//
//	redis://[user:pass@]host[:6379][/db][?opts]       one server
//	rediss://...                                      the same over TLS
//	redis+unix:///run/redis.sock[?db=N]               a Unix socket
//	redis+sentinel://[user:pass@]s1:26379,s2:26379/MASTER[/db][?opts]
//	redis+cluster://[user:pass@]n1:7001,n2:7002[?addr=n3:7003&opts]
//	postgres://user:pass@host:5432/db?sslmode=disable (or postgresql://)
//	mysql://user:pass@host:3306/db[?params]           MySQL and MariaDB (or mariadb://)
//	sqlite:/path/to/file.db[?params]                  (or sqlite:///path)
//
// The Redis forms are read by go-redis's own URL parsers (ParseURL,
// ParseFailoverURL, ParseClusterURL), so their query options are go-redis's:
// dial_timeout=3s, read_timeout, max_retries, pool_size, skip_verify=true
// and so on. The Sentinel and Cluster forms list their hosts separated by
// commas (a host without a port gets 26379 or 6379), which the command
// rewrites into go-redis's form: the first host, the others as addr
// parameters. In the Sentinel form the path names the master, or
// master_name does; as in go-redis, the userinfo authenticates to the
// sentinels and the username and password parameters to the master.
// rediss+sentinel:// and rediss+cluster:// use TLS. PostgreSQL URLs go to
// pgx as they are (its parameters, its PG* environment variables).
// mysql:// is turned into go-sql-driver's configuration; its parameters are
// the driver's (tls=true, timeout=5s, ...). A sqlite: file must exist, and
// is opened with modernc.org/sqlite and a busy timeout, so that the command
// waits for the consumers' writes rather than fail. A memory store lives in
// its consumer's process: there is nothing to connect to.
//
// # Commands
//
// get KEY... shows each key's applied revision ("-" when nothing is
// applied) and the claim in force, if any: the revision claimed, the
// claim's token, and the lease it has left, as the store's clock counts it.
// The table puts the key last, so that long keys widen no column; a key
// with spaces or unprintable characters is shown quoted. -json prints one
// object a line instead, with stable field names:
//
//	{"namespace":"orders","key":"order:42","exists":true,"applied":"41",
//	 "claim":{"revision":"42","token":"9a8b…","lease_left_ms":29812}}
//
// Revisions are decimal strings, because revisions that are Unix
// nanoseconds exceed 2^53, which jq and JavaScript would round as numbers;
// applied and claim are null when absent.
//
//	revguard get -store redis://localhost:6379 -namespace orders order:42 order:43
//
// set KEY REV makes REV (a decimal integer or an RFC 3339 timestamp, as
// revguard.ParseRevision reads it) the applied revision of KEY, lower or
// higher than before, and drops any claim: the repair for an entity
// poisoned by a bogus revision. forget KEY removes the entity, so that the
// next event of any revision applies. Both show what the store holds and
// ask on the terminal first ("y" or "yes" goes ahead; anything else exits 1
// having changed nothing); -yes skips the question. When stdin is not a
// terminal they refuse, with exit status 2, unless -yes is given: nobody is
// there to answer. They print the entity before → after, both as read from
// the store. Consumers with a drop cache (revguard.WithDropCache) do not
// see a lowered revision until they restart.
//
//	revguard set -store postgres://localhost/app -namespace orders order:42 41
//	revguard forget -store sqlite:/var/lib/app/revs.db -yes order:42
//
// scan lists a namespace's entities, with their revisions and claims, in
// no particular order, as a table or with -json as get prints them. It
// reads a page at a time (SCAN on every master in Redis, keyset pages in
// SQL) and prints as it goes. -match GLOB keeps the keys a path.Match
// pattern matches (the whole key: 'order:4*'; as in path.Match, * does not
// cross a '/', so 'tenant/*/42' or 'tenant/*' name the levels); -limit N stops after N
// entities (default 1000, 0 for all) and says on stderr that more match.
//
//	revguard scan -store redis+cluster://10.0.0.1:7001,10.0.0.2:7001 -namespace orders -match 'order:4*' -limit 50
//
// preflight runs the store's own safety checks and prints a verdict line:
// "ok: ..." and exit status 0, or one "FAIL: ..." line per problem and exit
// status 1; a store that cannot be reached fails too. Redis
// (redisstore.Store.Preflight, on every master of a cluster): a
// maxmemory-policy that may evict revisions. A Redis master without an
// append-only file also gets a "note:" line, which does not fail: a
// restart of it loses the revisions written since its last snapshot. SQL
// (sqlstore.Store.Preflight): the table exists, with the columns, types and
// primary key the store writes.
//
//	revguard preflight -store "mysql://app:$DB_PASSWORD@db:3306/app" -table revguard_revisions
//
// watch refreshes every -interval (default 2s) until SIGINT or SIGTERM, or
// after -n COUNT refreshes. When stdout is a terminal it clears the screen
// and redraws a small table (ANSI escapes, no TUI library); otherwise it
// prints one line per refresh, for logs and scripts. A refresh that fails
// is shown and watching goes on; if the last one failed, the exit status
// is 1. With -store it scans the namespace (-match, and -limit, default
// 10000: a count at the limit shows as N+) and shows how many entities it
// holds, how many claims are in force, and the five claims nearest to
// expiry. A consumer renews its claim every third of its lease, so a claim
// with less than two thirds left is likely held by a consumer that died or
// hangs.
//
//	2026-12-05T21:24:05Z entities=120 claims=1 claim="order:7"@42:12.3s
//
// With -metrics URL it reads a consumer's Prometheus endpoint instead: the
// revguard.decisions counter of contrib/revotel, which the OpenTelemetry
// Prometheus exporter serves as revguard_decisions_total (-metric names
// another), with labels revguard_outcome, error_type, revguard_namespace,
// revguard_mode and revguard_cached. It sums the series by those labels,
// shows each total and its rate per second since the previous refresh
// (none on the first; a counter that went down was reset, and counts from
// zero), and keeps one namespace's series when -namespace is given. The
// command reads the text exposition format with a small parser of its own
// rather than prometheus/common's expfmt: it needs counters' names, labels
// and values, and the parser spares the command that module and its
// dependencies.
//
//	revguard watch -metrics http://consumer:9464/metrics -interval 5s
//
// bench runs a guard on the store (-mode claim, the default, or
// atmostonce) for -d (default 5s) at -c goroutines (default 8), then the
// raw call a consumer without revguard would make for the same events, for
// -d again, and prints the events per second of each and their ratio. Each
// goroutine owns 100 keys and cycles through them with rising revisions,
// so every event applies, as in a steady stream. The raw call is the write
// the guard's decision replaces, the consumer recording an entity's last
// revision itself, unconditionally, in one round trip: on Redis an HSET of
// one field on a key of its own, on SQL a single-row upsert into a scratch
// table. The guard does more (in Claim mode a conditional claim and a
// commit, in AtMostOnce one conditional advance), which is what the ratio
// shows. It works in a namespace of its own, revguard-bench-<random>, and
// removes what it wrote (the guard's entities, the raw keys, the scratch
// table) when it ends, also when interrupted. A progress bar is drawn on
// stderr when stderr is a terminal.
//
//	revguard bench -store redis://localhost:6379 -d 10s -c 16
//
// help, -h or --help print the usage with an example of every command;
// help COMMAND, or COMMAND -h, print a command's flags.
//
// # Errors and exit status
//
// 0: done. 1: a failure, with what was wrong: a server that cannot be
// reached (its address and the cause), a key that revguard did not write
// (say a string where redisstore keeps a hash: check -prefix and
// -namespace), a preflight check that failed, a question answered no.
// 2: a command line that cannot run as written, with the part to change:
// an unknown command (with the usage), an unknown flag, a -store URL that
// does not parse (which part), a flag that does not fit the store (-table
// on Redis), a bad key or revision, set or forget without -yes on a
// non-terminal. Passwords in URLs are shown as xxxxx.
package main
