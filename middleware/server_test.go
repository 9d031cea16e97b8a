package middleware_test

import (
	"cmp"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
	"github.com/revguard/revguard/middleware"
)

// TestServerConcurrentDeliveries runs the middleware in a real net/http
// server on 127.0.0.1 and has concurrent clients deliver every revision of
// several keys at least twice, out of order, putting a delivery back in the
// queue on 409 and 5xx as a broker or webhook sender would. The inner
// handler fails now and then, so released claims are retried too. For every
// key the handler must complete revisions in strictly increasing order,
// never twice, never two at once, and end on the highest; under Sequential
// ordering it must complete every revision, 1 to the highest.
func TestServerConcurrentDeliveries(t *testing.T) {
	t.Run("Latest", func(t *testing.T) { testConcurrent(t, revguard.Latest) })
	t.Run("Sequential", func(t *testing.T) { testConcurrent(t, revguard.Sequential) })
}

type delivery struct {
	key string
	rev int
}

// queue hands out deliveries and takes back those to retry, until every
// one is finished.
type queue struct {
	mu      sync.Mutex
	items   []delivery
	pending int
}

func (q *queue) next() (delivery, bool) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			d := q.items[0]
			q.items = q.items[1:]
			q.mu.Unlock()
			return d, true
		}
		pending := q.pending
		q.mu.Unlock()
		if pending == 0 {
			return delivery{}, false
		}
		time.Sleep(100 * time.Microsecond)
	}
}

func (q *queue) retry(d delivery) {
	q.mu.Lock()
	q.items = append(q.items, d)
	q.mu.Unlock()
}

func (q *queue) finish() {
	q.mu.Lock()
	q.pending--
	q.mu.Unlock()
}

func testConcurrent(t *testing.T, ordering revguard.Ordering) {
	const (
		keys      = 6
		revisions = 40
		clients   = 16
	)
	var (
		mu        sync.Mutex
		completed = map[string][]int{} // revisions completed, per key
		running   = map[string]bool{}  // a handler is running for the key
		problems  []string
	)
	report := func(format string, args ...any) {
		mu.Lock()
		problems = append(problems, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get(keyHeader)
		rev, _ := strconv.Atoi(r.Header.Get(revHeader))
		body, _ := io.ReadAll(r.Body)
		if string(body) != key+"@"+strconv.Itoa(rev) {
			report("%s@%d: body %q", key, rev, body)
		}
		mu.Lock()
		if running[key] {
			problems = append(problems, fmt.Sprintf("%s@%d: two handlers at once", key, rev))
		}
		running[key] = true
		mu.Unlock()

		time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
		fail := rand.IntN(10) == 0

		mu.Lock()
		running[key] = false
		if !fail {
			if c := completed[key]; len(c) > 0 && rev <= c[len(c)-1] {
				problems = append(problems, fmt.Sprintf("%s@%d completed after %d", key, rev, c[len(c)-1]))
			}
			completed[key] = append(completed[key], rev)
		}
		mu.Unlock()
		if fail {
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})

	g := revguard.New(memstore.New(), middleware.Headers(keyHeader, revHeader), revguard.WithOrdering(ordering))
	srv := httptest.NewServer(middleware.HTTP(g)(inner))
	defer srv.Close()
	require.True(t, strings.HasPrefix(srv.URL, "http://127.0.0.1:"))

	// Nearly in order, as real streams are: each delivery lands up to ten
	// places from where it belongs, and each comes two or three times.
	type placed struct {
		d   delivery
		pos float64
	}
	var all []placed
	for k := range keys {
		for rev := 1; rev <= revisions; rev++ {
			for range 2 + rand.IntN(2) {
				all = append(all, placed{delivery{fmt.Sprintf("entity-%d", k), rev}, float64(rev) + 10*rand.Float64()})
			}
		}
	}
	slices.SortFunc(all, func(a, b placed) int { return cmp.Compare(a.pos, b.pos) })
	q := &queue{pending: len(all)}
	for _, p := range all {
		q.items = append(q.items, p.d)
	}

	client := &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: clients},
		Timeout:   10 * time.Second,
	}
	defer client.CloseIdleConnections()
	var cmu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				d, ok := q.next()
				if !ok {
					return
				}
				status, outcome, err := deliver(client, srv.URL, d.key, d.rev)
				cmu.Lock()
				counts[strconv.Itoa(status)+" "+outcome]++
				cmu.Unlock()
				switch {
				case err != nil:
					report("%s@%d: %v", d.key, d.rev, err)
				case status == http.StatusConflict || status >= 500:
					q.retry(d)
					continue
				case status == http.StatusNoContent:
				case status == http.StatusOK && (outcome == "duplicate" || outcome == "stale"):
				default:
					report("%s@%d: unexpected %d %q", d.key, d.rev, status, outcome)
				}
				q.finish()
			}
		}()
	}
	wg.Wait()

	assert.Empty(t, problems)
	for k := range keys {
		key := fmt.Sprintf("entity-%d", k)
		c := completed[key]
		if assert.NotEmpty(t, c, key) {
			assert.Equal(t, revisions, c[len(c)-1], key)
		}
		if ordering == revguard.Sequential {
			assert.Len(t, c, revisions, "%s: every revision, once", key)
		}
		rev, ok, err := g.Applied(t.Context(), key)
		require.NoError(t, err)
		assert.True(t, ok)
		assert.EqualValues(t, revisions, rev, key)
	}
	t.Logf("%d deliveries; responses: %v", len(all), counts)
	assert.NotZero(t, counts["200 duplicate"])
	assert.NotZero(t, counts["503 "], "some handlers failed and were retried")
}

func deliver(c *http.Client, url, key string, rev int) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(key+"@"+strconv.Itoa(rev)))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set(keyHeader, key)
	req.Header.Set(revHeader, strconv.Itoa(rev))
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get(middleware.OutcomeHeader), nil
}

// A body far above the limit, sent chunked so that nothing announces its
// size, is cut off at the limit and answered 413 with Connection: close;
// one whose Content-Length says so is answered before it is read.
func TestHugeBodyOverTheWire(t *testing.T) {
	inner := &recorder{}
	g := revguard.New(memstore.New(), middleware.JSONFields("id", "rev"))
	srv := httptest.NewServer(middleware.HTTP(g, middleware.WithMaxBody(1<<16))(inner))
	defer srv.Close()
	huge := `{"id":"a","rev":1,"pad":"` + strings.Repeat("x", 8<<20) + `"}`

	for _, chunked := range []bool{true, false} {
		var body io.Reader = strings.NewReader(huge)
		if chunked {
			body = struct{ io.Reader }{body} // hides the length
		}
		resp, err := http.Post(srv.URL, "application/json", body)
		require.NoError(t, err)
		msg, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, "chunked %v", chunked)
		assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
		assert.Contains(t, string(msg), "65536 bytes")
		assert.True(t, resp.Close, "the server closes the connection")
	}
	assert.Zero(t, inner.count())
}
