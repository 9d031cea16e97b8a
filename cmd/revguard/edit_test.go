package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/revguard/revguard"
)

// TestGetSetForget seeds an entity with a revision, one with a claim only,
// one with both, and checks that get shows them (table and JSON), that set
// and forget refuse without -yes on a non-terminal stdin, and that with
// -yes they change the store and print before → after.
func TestGetSetForget(t *testing.T) {
	forFixtures(t, func(t *testing.T, f *fixture) {
		f.set(t, "order:1", 41)
		claimOnly := f.claim(t, "order:2", 7, 5*time.Minute)
		f.set(t, "order 3", 10)
		both := f.claim(t, "order 3", 11, 5*time.Minute)

		r := revguardCmd(t, "", f.cmd("get", "order:1", "order:2", "order 3", "missing")...)
		require.Equal(t, 0, r.code, r.stderr)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		require.Len(t, lines, 5)
		assert.Equal(t, []string{"APPLIED", "CLAIMED", "LEASE", "LEFT", "TOKEN", "KEY"}, strings.Fields(lines[0]))
		assert.Equal(t, []string{"41", "-", "-", "-", "order:1"}, getRow(t, lines[1]))
		assertClaimRow(t, lines[2], "-", "7", claimOnly, "order:2")
		assertClaimRow(t, lines[3], "10", "11", both, `"order 3"`)
		assert.Equal(t, []string{"-", "-", "-", "-", "missing"}, getRow(t, lines[4]))

		r = revguardCmd(t, "", append(f.cmd("get", "order 3", "missing"), "-json")...)
		require.Equal(t, 0, r.code, r.stderr)
		lines = strings.Split(strings.TrimSpace(r.stdout), "\n")
		require.Len(t, lines, 2)
		var got entityJSON
		require.NoError(t, json.Unmarshal([]byte(lines[0]), &got))
		assert.Equal(t, f.ns, got.Namespace)
		assert.Equal(t, "order 3", got.Key)
		assert.True(t, got.Exists)
		require.NotNil(t, got.Applied)
		assert.Equal(t, "10", *got.Applied)
		require.NotNil(t, got.Claim)
		assert.Equal(t, "11", got.Claim.Revision)
		assert.Equal(t, both.String(), got.Claim.Token)
		assert.Greater(t, got.Claim.LeaseLeftMS, int64(4*60*1000))
		assert.LessOrEqual(t, got.Claim.LeaseLeftMS, int64(5*60*1000))
		// Absent fields are null, not missing, so that readers see the same keys always.
		assert.JSONEq(t, `{"namespace":"`+f.ns+`","key":"missing","exists":false,"applied":null,"claim":null}`, lines[1])

		// Without -yes, and with no terminal to ask on, nothing changes.
		r = revguardCmd(t, "yes\n", f.cmd("set", "order:1", "50")...)
		assert.Equal(t, 2, r.code)
		assert.Contains(t, r.stderr, "stdin is not a terminal")
		assert.Contains(t, r.stderr, "-yes")
		assert.Equal(t, revguard.State{Applied: 41, Exists: true}, f.peek(t, "order:1"))
		r = revguardCmd(t, "", f.cmd("forget", "order:1")...)
		assert.Equal(t, 2, r.code)
		assert.Equal(t, revguard.State{Applied: 41, Exists: true}, f.peek(t, "order:1"))

		r = revguardCmd(t, "", append(f.cmd("set", "order:1", "50"), "-yes")...)
		require.Equal(t, 0, r.code, r.stderr)
		assert.Contains(t, r.stdout, "applied 41 → applied 50")
		assert.Equal(t, revguard.State{Applied: 50, Exists: true}, f.peek(t, "order:1"))

		// Set drops the claim, and says so.
		r = revguardCmd(t, "", f.cmd("set", "-yes", "order 3", "2026-01-01T00:00:00Z")...)
		require.Equal(t, 0, r.code, r.stderr)
		assert.Contains(t, r.stdout, "applied 10, claim on 11 by "+both.String())
		assert.Contains(t, r.stdout, "→ applied 1767225600000000000\n")
		assert.Equal(t, revguard.State{Applied: 1767225600000000000, Exists: true}, f.peek(t, "order 3"))

		r = revguardCmd(t, "", f.cmd("forget", "-yes", "order:1")...)
		require.Equal(t, 0, r.code, r.stderr)
		assert.Contains(t, r.stdout, "applied 50 → nothing applied")
		assert.Equal(t, revguard.State{}, f.peek(t, "order:1"))

		r = revguardCmd(t, "", f.cmd("set", "-yes", "order:1", "4.2")...)
		assert.Equal(t, 2, r.code)
		assert.Contains(t, r.stderr, `"4.2" is neither a decimal integer nor an RFC 3339 timestamp`)
	})
}

// assertClaimRow checks a get row of an entity with a claim in force.
func assertClaimRow(t *testing.T, line, applied, claimed string, tok revguard.Token, key string) {
	t.Helper()
	f := getRow(t, line)
	assert.Equal(t, applied, f[0])
	assert.Equal(t, claimed, f[1])
	left, err := time.ParseDuration(f[2])
	require.NoError(t, err)
	assert.Greater(t, left, 4*time.Minute)
	assert.LessOrEqual(t, left, 5*time.Minute)
	assert.Equal(t, tok.String(), f[3])
	assert.Equal(t, key, f[4])
}

// getRow splits a row of get's table into its four columns and the key,
// which is last and may hold spaces when quoted.
func getRow(t *testing.T, line string) []string {
	t.Helper()
	m := regexp.MustCompile(`^(\S+) +(\S+) +(\S+) +(\S+) +(.+)$`).FindStringSubmatch(line)
	require.NotNil(t, m, line)
	return m[1:]
}

// TestConfirmOnTerminal answers set's and forget's question on a
// terminal: "y" changes the store, anything else changes nothing and
// exits 1.
func TestConfirmOnTerminal(t *testing.T) {
	t.Parallel()
	f := sqliteFixture(t)
	f.set(t, "k", 5)
	tok := f.claim(t, "k", 6, 5*time.Minute)

	out, code := runOnTerminal(t, "n\r", f.cmd("set", "k", "3")...)
	assert.Equal(t, 1, code)
	assert.Contains(t, out, "set k (namespace \""+f.ns+"\") on sqlite:")
	assert.Contains(t, out, ": applied 5, claim on 6 by "+tok.String())
	assert.Contains(t, out, "→ applied 3, dropping the claim")
	assert.Contains(t, out, "not confirmed: nothing changed")
	assert.Equal(t, revguard.State{Applied: 5, Exists: true}, f.peek(t, "k"))

	out, code = runOnTerminal(t, "yes\r", f.cmd("set", "k", "3")...)
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "k (namespace \""+f.ns+"\"): applied 5, claim on 6 by "+tok.String())
	assert.Contains(t, out, "left) → applied 3\r\n")
	assert.Equal(t, revguard.State{Applied: 3, Exists: true}, f.peek(t, "k"))

	out, code = runOnTerminal(t, "Y\r", f.cmd("forget", "k")...)
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "applied 3 → nothing applied")
	assert.Equal(t, revguard.State{}, f.peek(t, "k"))
}
