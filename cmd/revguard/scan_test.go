package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/revguard/revguard"
)

// scanEntities is more than one page of every store's Scan (500 rows or
// SCAN COUNT 500).
const scanEntities = 1100

// TestScan seeds more entities than a page holds, one with a claim, and
// checks that scan streams them all, that -match selects by pattern, and
// that -limit stops early and says so.
func TestScan(t *testing.T) {
	forFixtures(t, func(t *testing.T, f *fixture) {
		keys := make([]string, scanEntities)
		revs := make([]revguard.Revision, scanEntities)
		for i := range keys {
			keys[i], revs[i] = fmt.Sprintf("item:%04d", i), revguard.Revision(i+1)
		}
		f.seed(t, keys, revs)
		tok := f.claim(t, "claimed", 3, 5*time.Minute)

		r := revguardCmd(t, "", f.cmd("scan", "-json", "-limit", "0")...)
		require.Equal(t, 0, r.code, r.stderr)
		seen := map[string]entityJSON{}
		for line := range strings.SplitSeq(strings.TrimSpace(r.stdout), "\n") {
			var e entityJSON
			require.NoError(t, json.Unmarshal([]byte(line), &e), line)
			seen[e.Key] = e
		}
		require.Len(t, seen, scanEntities+1)
		for i, k := range keys {
			require.NotNil(t, seen[k].Applied, k)
			require.Equal(t, revs[i].String(), *seen[k].Applied, k)
		}
		c := seen["claimed"]
		assert.False(t, c.Exists)
		require.NotNil(t, c.Claim)
		assert.Equal(t, "3", c.Claim.Revision)
		assert.Equal(t, tok.String(), c.Claim.Token)

		// A path.Match pattern matches the whole key: item:0100 to item:0109.
		r = revguardCmd(t, "", f.cmd("scan", "-match", "item:010?")...)
		require.Equal(t, 0, r.code, r.stderr)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		require.Len(t, lines, 11, "a header and ten rows")
		assert.Equal(t, []string{"APPLIED", "CLAIMED", "LEASE", "LEFT", "KEY"}, strings.Fields(lines[0]))
		for _, l := range lines[1:] {
			f := strings.Fields(l)
			require.Len(t, f, 4, l)
			assert.Equal(t, "-", f[1])
			var n int
			_, err := fmt.Sscanf(f[3], "item:%d", &n)
			require.NoError(t, err)
			assert.Equal(t, fmt.Sprint(n+1), f[0], l)
			assert.True(t, n >= 100 && n <= 109, l)
		}

		r = revguardCmd(t, "", f.cmd("scan", "-limit", "10", "-json")...)
		require.Equal(t, 0, r.code, r.stderr)
		assert.Len(t, strings.Split(strings.TrimSpace(r.stdout), "\n"), 10)
		assert.Contains(t, r.stderr, "stopped after -limit 10 entities; more match")

		r = revguardCmd(t, "", f.cmd("scan", "-match", "nothing*")...)
		require.Equal(t, 0, r.code, r.stderr)
		assert.Empty(t, r.stdout)
		assert.Contains(t, r.stderr, "no entity of namespace")

		r = revguardCmd(t, "", f.cmd("scan", "-match", "[")...)
		assert.Equal(t, 2, r.code)
		assert.Contains(t, r.stderr, `-match "[": syntax error in pattern`)
	})
}
