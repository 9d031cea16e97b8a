package main

import (
	"context"
	"database/sql"
	"net"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/revguard/revguard/internal/testenv"
)

// TestPreflightOK runs preflight on every store as the tests set it up:
// a table made by CreateTable, a server with maxmemory-policy noeviction.
func TestPreflightOK(t *testing.T) {
	forFixtures(t, func(t *testing.T, f *fixture) {
		r := revguardCmd(t, "", append([]string{"preflight"}, f.args...)...)
		require.Equal(t, 0, r.code, r.stdout+r.stderr)
		assert.Regexp(t, `(^|\n)ok: \S+ store at \S+: .+\n$`, r.stdout)
	})
}

// TestPreflightBadTable points preflight at SQLite tables the store cannot
// use: a column of the wrong type, and no table at all.
func TestPreflightBadTable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.db")
	db, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	defer func() { _ = db.Close() }()
	// applied as INTEGER, which SQLite keeps as signed 64-bit: revisions
	// above 2^63 would not fit, and text ones would compare as text.
	_, err = db.Exec(`CREATE TABLE revs (namespace BLOB NOT NULL, entity_key BLOB NOT NULL, applied INTEGER,
		applied_token BLOB, claim_rev TEXT, claim_token BLOB, claim_until TEXT, PRIMARY KEY (namespace, entity_key))`)
	require.NoError(t, err)

	r := revguardCmd(t, "", "preflight", "-store", "sqlite:"+path, "-table", "revs")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stdout, "FAIL: ")
	assert.Contains(t, r.stdout, "column applied is INTEGER, want TEXT")
	assert.NotContains(t, r.stdout, "ok:")

	r = revguardCmd(t, "", "preflight", "-store", "sqlite:"+path)
	assert.Equal(t, 1, r.code)
	assert.Regexp(t, `^FAIL: .*revguard_revisions.* does not exist`, r.stdout)

	// bench refuses such a table before it writes anything.
	r = revguardCmd(t, "", "bench", "-store", "sqlite:"+path, "-table", "revs")
	assert.Equal(t, 1, r.code)
	assert.Empty(t, r.stdout)
	assert.Contains(t, r.stderr, "bench: the store's table is not ready")
	assert.Contains(t, r.stderr, "column applied is INTEGER, want TEXT")
	var tables int
	require.NoError(t, db.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'`).Scan(&tables))
	assert.Equal(t, 1, tables, "no scratch table left")
}

// TestPreflightEvictingRedis starts a redis-server of its own whose
// maxmemory-policy is allkeys-lru (the shared one serves other tests), and
// checks that preflight fails on it.
func TestPreflightEvictingRedis(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("redis-server"); err != nil {
		testenv.Missing(t, "redis-server is not on PATH")
	}
	addr := startRedis(t, "--maxmemory-policy", "allkeys-lru")
	r := revguardCmd(t, "", "preflight", "-store", "redis://"+addr)
	assert.Equal(t, 1, r.code)
	assert.Regexp(t, `^note: appendonly is off on `+addr+`: .*\nFAIL: .*maxmemory-policy is allkeys-lru`, r.stdout)
}

// TestPreflightUnreachable fails with the address and the cause.
func TestPreflightUnreachable(t *testing.T) {
	t.Parallel()
	addr := closedAddr(t)
	r := revguardCmd(t, "", "preflight", "-store", "redis://"+addr)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stdout, "FAIL: cannot reach the Redis store at redis://"+addr)
	assert.Contains(t, r.stdout, "connection refused")
}

// closedAddr returns a local address nothing listens on.
func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// startRedis runs a redis-server with extra arguments, without
// persistence, on a free port until t ends, and returns its address.
func startRedis(t *testing.T, extra ...string) string {
	addr := closedAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	args := append([]string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir()}, extra...)
	cmd := exec.Command("redis-server", args...)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer func() { _ = c.Close() }()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		require.True(t, time.Now().Before(deadline), "redis-server on port %s did not start", port)
		time.Sleep(20 * time.Millisecond)
	}
	return addr
}
