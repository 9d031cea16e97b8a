package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/revguard/revguard"
)

// runOnTerminal runs the binary with a pseudo-terminal as its stdin,
// stdout and stderr, as an operator's shell runs it, and returns all it
// wrote there. Only a terminal device makes the command redraw, ask for
// confirmation or draw progress, so a pipe cannot stand in for one. When
// answer is not empty, it is typed once the command asks "[y/N]".
func runOnTerminal(t *testing.T, answer string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 160})
	require.NoError(t, err)
	defer func() { _ = tty.Close() }()
	var out bytes.Buffer
	buf := make([]byte, 4096)
	for {
		// Reading ends with an error (EIO on Linux) once the command has
		// exited and closed its side of the terminal.
		n, err := tty.Read(buf)
		out.Write(buf[:n])
		if answer != "" && bytes.Contains(out.Bytes(), []byte("[y/N] ")) {
			_, werr := io.WriteString(tty, answer)
			require.NoError(t, werr)
			answer = ""
		}
		if err != nil {
			break
		}
	}
	code := 0
	if err := cmd.Wait(); err != nil {
		var ee *exec.ExitError
		require.True(t, errors.As(err, &ee), "%v", err)
		code = ee.ExitCode()
	}
	t.Logf("revguard %s on a terminal -> %d:\n%q", strings.Join(args, " "), code, out.String())
	return out.String(), code
}

// watchFixture is a SQLite store (no server needed) holding three applied
// entities and one claim.
func watchFixture(t *testing.T) *fixture {
	f := sqliteFixture(t)
	f.seed(t, []string{"a", "b", "c"}, []revguard.Revision{1, 2, 3})
	f.claim(t, "c", 4, 5*time.Minute)
	return f
}

// TestWatchTerminal checks that on a terminal watch clears and redraws the
// screen each refresh, with the counts and the claim, and exits after -n.
func TestWatchTerminal(t *testing.T) {
	t.Parallel()
	f := watchFixture(t)
	out, code := runOnTerminal(t, "", f.cmd("watch", "-n", "3", "-interval", "200ms")...)
	require.Equal(t, 0, code)
	screens := strings.Split(out, clearScreen)
	require.Len(t, screens, 4, "three redraws, each after a clear")
	for i, s := range screens[1:] {
		assert.Contains(t, s, fmt.Sprintf("(refresh %d)", i+1))
		assert.Regexp(t, `entities +3\r?\n`, s)
		assert.Regexp(t, `claims +1\r?\n`, s)
		assert.Regexp(t, `\n3 +4 +4m\S+s +[0-9a-f]{32} +c\r?\n`, s)
	}
}

// TestWatchLines checks that without a terminal watch prints one line per
// refresh.
func TestWatchLines(t *testing.T) {
	t.Parallel()
	f := watchFixture(t)
	r := revguardCmd(t, "", f.cmd("watch", "-n", "2", "-interval", "100ms")...)
	require.Equal(t, 0, r.code, r.stderr)
	assert.NotContains(t, r.stdout, "\x1b")
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	require.Len(t, lines, 2)
	for _, l := range lines {
		assert.Regexp(t, `^\S+ entities=3 claims=1 claim="c"@4:4m\S+s$`, l)
	}

	r = revguardCmd(t, "", f.cmd("watch", "-n", "1", "-limit", "2")...)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Regexp(t, `^\S+ entities=2\+ claims=\d`, r.stdout, "a count stopped at -limit")
}

// exposition is what the test's metrics endpoint serves on its n-th
// request: applied grows by 100 and in-flight errors by 3 a request,
// duplicates stay put, and series of another namespace and other metrics
// stand beside them, as a consumer's endpoint has them.
func exposition(n int) string {
	return fmt.Sprintf(`# HELP revguard_decisions_total The decisions of revguard guards.
# TYPE revguard_decisions_total counter
revguard_decisions_total{job="a\"b",otel_scope_name="github.com/revguard/revguard/contrib/revotel",revguard_cached="false",revguard_mode="claim",revguard_namespace="orders",revguard_outcome="applied"} %d
revguard_decisions_total{otel_scope_name="github.com/revguard/revguard/contrib/revotel",revguard_cached="true",revguard_mode="claim",revguard_namespace="orders",revguard_outcome="duplicate"} 7
revguard_decisions_total{error_type="in_flight",otel_scope_name="github.com/revguard/revguard/contrib/revotel",revguard_cached="false",revguard_mode="claim",revguard_namespace="orders",revguard_outcome="error"} %d 1767225600000
revguard_decisions_total{revguard_cached="false",revguard_mode="atmostonce",revguard_namespace="billing",revguard_outcome="applied"} 1e3
# HELP revguard_decisions_total_seconds Not a decision counter.
revguard_decisions_total_seconds_bucket{le="+Inf"} 12
go_goroutines 42
`, 100*n, 3*n)
}

func metricsServer(t *testing.T) *httptest.Server {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = io.WriteString(w, exposition(int(requests.Add(1))))
	}))
	t.Cleanup(srv.Close)
	return srv
}

var metricsLine = regexp.MustCompile(`^\S+ decisions=(\d+) rate=(\S+) applied=(\d+)\((\S+)\) duplicate=7\((\S+)\) error/in_flight=(\d+)\((\S+)\)$`)

// TestWatchMetrics reads decision counters from a Prometheus endpoint and
// checks the totals and the rates between refreshes.
func TestWatchMetrics(t *testing.T) {
	t.Parallel()
	srv := metricsServer(t)
	r := revguardCmd(t, "", "watch", "-metrics", srv.URL+"/metrics", "-namespace", "orders", "-interval", "200ms", "-n", "3")
	require.Equal(t, 0, r.code, r.stderr)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	require.Len(t, lines, 3)
	for i, l := range lines {
		m := metricsLine.FindStringSubmatch(l)
		require.NotNil(t, m, l)
		n := i + 1
		assert.Equal(t, strconv.Itoa(100*n+7+3*n), m[1])
		assert.Equal(t, strconv.Itoa(100*n), m[3])
		assert.Equal(t, strconv.Itoa(3*n), m[6])
		if i == 0 {
			assert.Equal(t, []string{"-", "-", "-", "-"}, []string{m[2], m[4], m[5], m[7]}, "no rate before a second reading")
			continue
		}
		// 100 applied per refresh of about 200ms: the ticker may shorten one
		// a little, a busy machine stretch it.
		applied := perSecond(t, m[4])
		assert.True(t, applied > 100 && applied < 1000, "applied rate %v", applied)
		assert.Equal(t, "0.0/s", m[5])
		assert.InDelta(t, applied*3/100, perSecond(t, m[7]), 0.11)
		assert.InDelta(t, applied*103/100, perSecond(t, m[2]), 0.11)
	}

	// Without -namespace, every namespace's series count.
	r = revguardCmd(t, "", "watch", "-metrics", srv.URL, "-n", "1")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Regexp(t, `decisions=\d+ rate=- applied=\d+\(-\) duplicate=7\(-\) error/in_flight=\d+\(-\)\n$`, r.stdout)
	assert.Contains(t, r.stdout, fmt.Sprintf("decisions=%d ", 1000+100*4+7+3*4))

	// On a terminal, a table by series.
	out, code := runOnTerminal(t, "", "watch", "-metrics", srv.URL, "-namespace", "orders", "-n", "2", "-interval", "100ms")
	require.Equal(t, 0, code)
	screens := strings.Split(out, clearScreen)
	require.Len(t, screens, 3)
	assert.Regexp(t, `OUTCOME +ERROR +NAMESPACE +MODE +CACHED +TOTAL +RATE`, screens[2])
	assert.Regexp(t, `\napplied +- +orders +claim +false +\d+ +\d+\.\d/s`, screens[2])
	assert.Regexp(t, `\nerror +in_flight +orders +claim +false +\d+ +\d+\.\d/s`, screens[2])
	assert.NotContains(t, screens[2], "billing")
}

func perSecond(t *testing.T, s string) float64 {
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "/s"), 64)
	require.NoError(t, err, s)
	return v
}

// TestWatchMetricsDown keeps polling an endpoint that fails, shows why,
// and exits 1 when the last refresh failed.
func TestWatchMetricsDown(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	r := revguardCmd(t, "", "watch", "-metrics", srv.URL+"/metrics", "-n", "2", "-interval", "50ms")
	assert.Equal(t, 1, r.code)
	assert.Equal(t, 2, strings.Count(r.stdout, "error: GET "+srv.URL+"/metrics: 404 Not Found\n"))
}
