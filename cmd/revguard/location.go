package main

import (
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/redis/go-redis/v9"
	_ "modernc.org/sqlite" // "sqlite"

	"github.com/revguard/revguard/backends/sqlstore"
)

// location is a -store URL read, not yet connected: how to make the client.
type location struct {
	desc    string                       // the URL, password hidden
	redis   func() redis.UniversalClient // Redis stores; nil for SQL
	sql     func() (*sql.DB, error)      // SQL stores
	dialect sqlstore.Dialect
}

const storeForms = "redis://, rediss://, redis+sentinel://, redis+cluster://, postgres://, mysql:// or sqlite:PATH"

// parseLocation reads a -store URL. Its errors name the part that is wrong
// and are usage errors.
func parseLocation(raw string) (*location, error) {
	scheme, _, ok := strings.Cut(raw, ":")
	if !ok || scheme == "" {
		return nil, usagef("-store %q is not a URL: want %s", raw, storeForms)
	}
	desc := redact(raw)
	bad := func(err error) error { return usagef("-store %s: %v", desc, err) }
	switch strings.ToLower(scheme) {
	case "redis", "rediss", "redis+unix":
		o, err := redisOptions(raw)
		if err != nil {
			return nil, bad(err)
		}
		return &location{desc: desc, redis: func() redis.UniversalClient { return redis.NewClient(o) }}, nil
	case "redis+sentinel", "rediss+sentinel":
		o, err := sentinelOptions(raw)
		if err != nil {
			return nil, bad(err)
		}
		return &location{desc: desc, redis: func() redis.UniversalClient { return redis.NewFailoverClient(o) }}, nil
	case "redis+cluster", "rediss+cluster":
		o, err := clusterOptions(raw)
		if err != nil {
			return nil, bad(err)
		}
		return &location{desc: desc, redis: func() redis.UniversalClient { return redis.NewClusterClient(o) }}, nil
	case "postgres", "postgresql":
		cfg, err := pgx.ParseConfig(raw) // its errors hide the password
		if err != nil {
			return nil, usagef("-store: %v", err)
		}
		return &location{desc: desc, dialect: sqlstore.Postgres, sql: func() (*sql.DB, error) { return stdlib.OpenDB(*cfg), nil }}, nil
	case "mysql", "mariadb":
		cfg, err := mysqlConfig(raw)
		if err != nil {
			return nil, bad(err)
		}
		return &location{desc: desc, dialect: sqlstore.MySQL, sql: func() (*sql.DB, error) {
			c, err := mysql.NewConnector(cfg)
			if err != nil {
				return nil, bad(err)
			}
			return sql.OpenDB(c), nil
		}}, nil
	case "sqlite", "sqlite3":
		dsn, err := sqliteDSN(raw)
		if err != nil {
			return nil, bad(err)
		}
		return &location{desc: desc, dialect: sqlstore.SQLite, sql: func() (*sql.DB, error) { return sql.Open("sqlite", dsn) }}, nil
	case "memory":
		return nil, usagef("-store %s: a memory store lives inside its consumer's process; there is nothing to connect to", desc)
	}
	return nil, usagef("-store %s: unknown scheme %q: want %s", desc, scheme, storeForms)
}

// redact hides the passwords of a URL, in its userinfo (as
// url.URL.Redacted does, without parsing the URL: a list of hosts may not
// parse) and in password parameters (the Sentinel form's master password,
// pgx's password).
func redact(raw string) string {
	raw = passwordParam.ReplaceAllString(raw, "${1}xxxxx")
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw
	}
	auth := rest
	if end := strings.IndexAny(rest, "/?#"); end >= 0 {
		auth = rest[:end]
	}
	at := strings.LastIndex(auth, "@")
	user, _, hasPass := strings.Cut(auth[:max(at, 0)], ":")
	if at < 0 || !hasPass {
		return raw
	}
	return scheme + "://" + user + ":xxxxx" + rest[at:]
}

var passwordParam = regexp.MustCompile(`(?i)([?&]password=)[^&#]*`)

// redisOptions reads redis://, rediss:// and redis+unix:///path with
// go-redis's own parser, which also takes its options as query parameters
// (dial_timeout=3s, db=2, ...).
func redisOptions(raw string) (*redis.Options, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if strings.Contains(u.Host, ",") {
		return nil, fmt.Errorf("several hosts %q: write redis+cluster:// for a Redis Cluster, redis+sentinel:// for Sentinel", u.Host)
	}
	if strings.EqualFold(u.Scheme, "redis+unix") {
		u.Scheme = "unix"
	}
	return redis.ParseURL(u.String())
}

// sentinelOptions reads redis+sentinel://[user:pass@]h1:26379,h2:26379/MASTER[/db][?opts]
// by rewriting it into the form go-redis's ParseFailoverURL reads: the
// first sentinel as host, the others as addr parameters, the master as
// master_name. As there, the userinfo authenticates to the sentinels and
// the username and password parameters to the master.
func sentinelOptions(raw string) (*redis.FailoverOptions, error) {
	u, hosts, err := multiHost(raw, "26379")
	if err != nil {
		return nil, err
	}
	q := u.Query()
	path := strings.FieldsFunc(u.Path, func(r rune) bool { return r == '/' })
	switch len(path) {
	case 0:
	case 1, 2:
		if q.Has("master_name") {
			return nil, fmt.Errorf("the master is named twice: in the path (%q) and in master_name", path[0])
		}
		q.Set("master_name", path[0])
	default:
		return nil, fmt.Errorf("path %q: want /MASTER or /MASTER/DB", u.Path)
	}
	if q.Get("master_name") == "" {
		return nil, errors.New("no master name: write redis+sentinel://host:26379/MASTER")
	}
	for _, h := range hosts[1:] {
		q.Add("addr", h)
	}
	rw := url.URL{Scheme: baseScheme(u.Scheme), User: u.User, Host: hosts[0], RawQuery: q.Encode()}
	if len(path) == 2 {
		rw.Path = "/" + path[1]
	}
	return redis.ParseFailoverURL(rw.String())
}

// clusterOptions reads redis+cluster://[user:pass@]h1:7001,h2:7002[?opts]
// by rewriting it into the form go-redis's ParseClusterURL reads. More
// nodes may also come as addr parameters, as there.
func clusterOptions(raw string) (*redis.ClusterOptions, error) {
	u, hosts, err := multiHost(raw, "6379")
	if err != nil {
		return nil, err
	}
	if strings.Trim(u.Path, "/") != "" {
		return nil, fmt.Errorf("path %q: a Redis Cluster has one database; write no path", u.Path)
	}
	q := u.Query()
	for _, h := range hosts[1:] {
		q.Add("addr", h)
	}
	rw := url.URL{Scheme: baseScheme(u.Scheme), User: u.User, Host: hosts[0], RawQuery: q.Encode()}
	return redis.ParseClusterURL(rw.String())
}

// multiHost parses a URL whose host is a comma-separated list and returns
// it with the first host alone, and the hosts, each with a port (port when
// it has none). The list is cut out before url.Parse, which would read
// "h1:7001,[::1]" as a host with a bad port.
func multiHost(raw, port string) (*url.URL, []string, error) {
	scheme, rest, _ := strings.Cut(raw, "://")
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	auth := rest[:end]
	at := strings.LastIndex(auth, "@") + 1
	if auth[at:] == "" {
		return nil, nil, errors.New("no host: write host:port after //")
	}
	var hosts []string
	for _, h := range strings.Split(auth[at:], ",") {
		if h == "" {
			return nil, nil, fmt.Errorf("empty host in %q", auth[at:])
		}
		if _, _, err := net.SplitHostPort(h); err != nil {
			h = net.JoinHostPort(strings.Trim(h, "[]"), port)
		}
		hosts = append(hosts, h)
	}
	u, err := url.Parse(scheme + "://" + auth[:at] + hosts[0] + rest[end:])
	if err != nil {
		return nil, nil, err
	}
	return u, hosts, nil
}

// baseScheme is redis or rediss, what go-redis's parsers take.
func baseScheme(s string) string {
	if strings.HasPrefix(strings.ToLower(s), "rediss") {
		return "rediss"
	}
	return "redis"
}

// mysqlConfig turns mysql://user:pass@host:3306/db?params into the
// go-sql-driver configuration; the parameters are the driver's own
// (tls=true, timeout=5s, ...).
func mysqlConfig(raw string) (*mysql.Config, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if u.Host == "" {
		return nil, errors.New("no host: write mysql://user:pass@host:3306/DATABASE")
	}
	db := strings.TrimPrefix(u.Path, "/")
	if db == "" || strings.Contains(db, "/") {
		return nil, fmt.Errorf("path %q: want /DATABASE", u.Path)
	}
	cfg, err := mysql.ParseDSN("/" + db + "?" + u.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("query parameters: %w", err)
	}
	cfg.Net, cfg.Addr = "tcp", u.Host
	if u.Port() == "" {
		cfg.Addr = net.JoinHostPort(u.Hostname(), "3306")
	}
	if u.User != nil {
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
	}
	return cfg, nil
}

// sqliteDSN turns sqlite:PATH[?params] (or sqlite://PATH) into a
// modernc.org/sqlite DSN with a busy timeout, so that the command waits
// for the consumers' writes rather than fail. The file must exist: opening
// a missing one would create an empty database and report nothing there.
func sqliteDSN(raw string) (string, error) {
	_, rest, _ := strings.Cut(raw, ":")
	rest = strings.TrimPrefix(rest, "//")
	path, query, _ := strings.Cut(rest, "?")
	if path == "" {
		return "", errors.New("no file: write sqlite:/path/to/file.db")
	}
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("database file: %w", err)
	}
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)"
	if query != "" {
		dsn += "&" + query
	}
	return dsn, nil
}
