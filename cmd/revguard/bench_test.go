package main

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/revguard/revguard"
)

var benchOutput = regexp.MustCompile(`^bench \S+: 2 goroutines, 1s per run, namespace (revguard-bench-[0-9a-f]{8})
\s*guard \((\w+)\)\s+(\d+) events/s
\s*(raw \((?:HSET|upsert)\))\s+(\d+) events/s
\s*ratio guard/raw\s+(\d+\.\d\d)
$`)

// TestBench runs bench for a second a side on every store and checks that
// it prints both rates and their ratio, and leaves nothing behind: no
// entity in its namespace, no raw key or scratch table.
func TestBench(t *testing.T) {
	forFixtures(t, func(t *testing.T, f *fixture) {
		args := append([]string{"bench", "-d", "1s", "-c", "2"}, f.args...)
		mode := "Claim"
		if f.name == "sqlite" {
			args, mode = append(args, "-mode", "atmostonce"), "AtMostOnce"
		}
		r := revguardCmd(t, "", args...)
		require.Equal(t, 0, r.code, r.stderr)
		m := benchOutput.FindStringSubmatch(r.stdout)
		require.NotNil(t, m, "output:\n%s", r.stdout)
		ns, raw := m[1], m[4]
		assert.Equal(t, mode, m[2])
		guardRate, _ := strconv.Atoi(m[3])
		rawRate, _ := strconv.Atoi(m[5])
		assert.Positive(t, guardRate)
		assert.Positive(t, rawRate)
		ratio, _ := strconv.ParseFloat(m[6], 64)
		assert.InDelta(t, float64(guardRate)/float64(rawRate), ratio, 0.01)
		assert.Empty(t, r.stderr, "no progress bar when stderr is not a terminal")

		ctx := context.Background()
		left := 0
		require.NoError(t, f.store.(revguard.Inspector).Scan(ctx, ns, "", func(revguard.Entity) error { left++; return nil }))
		assert.Zero(t, left, "entities left in %s", ns)
		if f.rdb != nil {
			assert.Equal(t, "raw (HSET)", raw)
			assert.Zero(t, f.redisKeys(t, f.prefix+ns+":*"), "raw keys left")
		} else {
			assert.Equal(t, "raw (upsert)", raw)
			var n int
			err := f.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+strings.ReplaceAll(ns, "-", "_")).Scan(&n)
			assert.Error(t, err, "the scratch table was dropped")
		}
	})
}

// TestBenchProgress checks that bench draws a progress bar on a terminal,
// and clears it before printing the results.
func TestBenchProgress(t *testing.T) {
	t.Parallel()
	f := sqliteFixture(t)
	out, code := runOnTerminal(t, "", append([]string{"bench", "-d", "300ms", "-c", "1"}, f.args...)...)
	require.Equal(t, 0, code)
	assert.Regexp(t, `\r\[=* *\] guard \(Claim\) +\d+\.\ds/300ms \d+ events`, out)
	assert.Regexp(t, `\r\[=* *\] raw \(upsert\) +\d+\.\ds/300ms \d+ events`, out)
	assert.Contains(t, out, "\r\x1b[K")
	assert.Regexp(t, `ratio guard/raw +\d+\.\d\d`, out)
}
