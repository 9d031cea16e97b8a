package main

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestUsageErrors checks that command lines that cannot run exit 2 and say
// what to change, before any I/O (none of these hosts exist).
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "missing.db")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"get", "k"}, "-store is required (or set $REVGUARD_STORE)"},
		{[]string{"get", "-store", "localhost:6379", "k"}, `unknown scheme "localhost"`},
		{[]string{"get", "-store", "nowhere", "k"}, `-store "nowhere" is not a URL`},
		{[]string{"get", "-store", "ftp://h/x", "k"}, `unknown scheme "ftp"`},
		{[]string{"get", "-store", "redis://u:secret@h:6379/abc", "k"}, `-store redis://u:xxxxx@h:6379/abc: redis: invalid database number: "abc"`},
		{[]string{"get", "-store", "redis://h:6379?dial_timeout=soon", "k"}, "invalid dial_timeout duration"},
		{[]string{"get", "-store", "redis://h1:6379,h2:6379", "k"}, "several hosts"},
		{[]string{"get", "-store", "redis+sentinel://h1:26379,h2:26379", "k"}, "no master name"},
		{[]string{"get", "-store", "redis+sentinel://h1:26379/m/0/x", "k"}, `path "/m/0/x": want /MASTER or /MASTER/DB`},
		{[]string{"get", "-store", "redis+cluster://h1:7001,h2:7002/3", "k"}, "a Redis Cluster has one database"},
		{[]string{"get", "-store", "redis+cluster://h1:7001,,h2", "k"}, "empty host"},
		{[]string{"get", "-store", "mysql://u:p@db:3306", "k"}, `path "": want /DATABASE`},
		{[]string{"get", "-store", "mysql://u:p@db:3306/app?timeout=soon", "k"}, `query parameters: time: invalid duration "soon"`},
		{[]string{"get", "-store", "sqlite:" + missing, "k"}, "database file: stat " + missing + ": no such file or directory"},
		{[]string{"get", "-store", "memory:", "k"}, "lives inside its consumer's process"},
		{[]string{"get", "-store", "postgres://u:secret@h/db?sslmode=bogus", "k"}, "sslmode"},
		{[]string{"get", "-store", "redis://h:6379", "-table", "t", "k"}, "-table is for SQL stores"},
		{[]string{"get", "-store", "sqlite:" + missing, "-prefix", "p:", "k"}, "database file"},
		{[]string{"get", "-store", "redis://h:6379", "-prefix", "a{b}", "k"}, "may not contain '{' or '}'"},
		{[]string{"get", "-store", "redis://h:6379"}, "get: name at least one KEY"},
		{[]string{"get", "-bogus"}, "get: flag provided but not defined: -bogus (revguard help get lists its flags)"},
		{[]string{"set", "-store", "redis://h:6379", "k"}, "set: want KEY REV, got 1 arguments"},
		{[]string{"scan", "-store", "redis://h:6379", "extra"}, "scan takes no arguments"},
		{[]string{"scan", "-store", "redis://h:6379", "-limit", "-1"}, "-limit -1: want 0 (no limit) or more"},
		{[]string{"watch", "-store", "redis://h:6379", "-metrics", "http://h/metrics"}, "give one of them"},
		{[]string{"watch", "-metrics", "h:9464"}, "want an http:// or https:// URL"},
		{[]string{"bench", "-store", "redis://h:6379", "-mode", "transactional"}, `-mode "transactional": want claim or atmostonce`},
		{[]string{"help", "frobnicate"}, `help: unknown command "frobnicate"`},
	} {
		r := revguardCmd(t, "", tc.args...)
		assert.Equal(t, 2, r.code, "%q", tc.args)
		assert.Contains(t, r.stderr, tc.want, "%q", tc.args)
		assert.NotContains(t, r.stderr, "secret", "%q: a password was printed", tc.args)
	}
}

func TestNoCommandPrintsUsage(t *testing.T) {
	t.Parallel()
	r := revguardCmd(t, "")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "Usage:\n  revguard COMMAND -store URL")
	assert.Contains(t, r.stderr, "revguard: no command given")

	r = revguardCmd(t, "", "nope")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "Commands:\n")
}

// TestHelp checks that help and -h print the usage, with an example of
// every command, on stdout with status 0.
func TestHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		r := revguardCmd(t, "", args...)
		require.Equal(t, 0, r.code)
		for _, c := range commands {
			assert.Contains(t, r.stdout, "\n  "+c.example+"\n", c.name)
			assert.Contains(t, r.stdout, "\n  "+c.name+" ", c.name)
		}
	}
	for _, args := range [][]string{{"help", "scan"}, {"scan", "-h"}, {"scan", "-store", "redis://h", "-h"}} {
		r := revguardCmd(t, "", args...)
		require.Equal(t, 0, r.code)
		assert.Contains(t, r.stdout, "Usage: revguard scan -store URL")
		assert.Contains(t, r.stdout, "Example:\n  "+scanCmd.example)
		assert.Contains(t, r.stdout, "-match pattern")
	}
}

// TestUnreachable names the server and the cause, with status 1.
func TestUnreachable(t *testing.T) {
	t.Parallel()
	addr := closedAddr(t)
	for _, url := range []string{"redis://" + addr, "redis+cluster://" + addr, "postgres://u@" + addr + "/db?sslmode=disable", "mysql://u:p@" + addr + "/db"} {
		r := revguardCmd(t, "", "get", "-store", url, "k")
		assert.Equal(t, 1, r.code, url)
		assert.Contains(t, r.stderr, "revguard: cannot reach the ", url)
		assert.Contains(t, r.stderr, " store at "+redact(url)+": ", url)
		assert.Contains(t, r.stderr, addr, url)
		assert.Contains(t, r.stderr, "connection refused", url)
	}
}

// TestForeignKey points get at a Redis key revguard did not write and
// checks the message says so and what to do.
func TestForeignKey(t *testing.T) {
	t.Parallel()
	f := redisFixture(t)
	require.NoError(t, f.rdb.Set(context.Background(), f.prefix+"{"+f.ns+":k}", "hello", 0).Err())

	r := revguardCmd(t, "", f.cmd("get", "k")...)
	assert.Equal(t, 1, r.code)
	assert.Empty(t, r.stdout)
	assert.Contains(t, r.stderr, `revguard: get k: redisstore: key holds data revguard did not write`)
	assert.Contains(t, r.stderr, "check -prefix and -namespace")

	r = revguardCmd(t, "", f.cmd("scan")...)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "key holds data revguard did not write")
}
