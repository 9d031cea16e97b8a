package middleware_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
	"github.com/revguard/revguard/middleware"
)

var clock = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

func fixedClock() time.Time { return clock }

// TestResponses sends one request per case to a fresh guard and checks the
// whole response.
func TestResponses(t *testing.T) {
	type env struct {
		g     *revguard.Guard[*http.Request]
		store *flakyStore
	}
	type tc struct {
		name      string
		guardOpts []revguard.Option
		mwOpts    []middleware.Option
		extract   revguard.Extractor[*http.Request]
		setup     func(t *testing.T, e env)
		inner     func(w http.ResponseWriter, r *http.Request)
		req       func() *http.Request
		status    int
		ran       bool   // the inner handler was called
		outcome   string // Revision-Outcome
		body      string // exact body, when not a problem
		problem   string // the problem type ends with this
		detail    string // the problem detail contains this
		retry     string // Retry-After
		check     func(t *testing.T, w *httptest.ResponseRecorder)
	}
	applied := func(rev revguard.Revision) func(*testing.T, env) {
		return func(t *testing.T, e env) {
			require.NoError(t, e.g.SetApplied(context.Background(), "order-1", rev))
		}
	}
	cases := []tc{
		{
			name: "applied: the inner response passes through",
			inner: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-App", "yes")
				w.WriteHeader(http.StatusCreated)
				_, _ = io.WriteString(w, "created")
			},
			req:    func() *http.Request { return headerRequest("order-1", "7") },
			status: http.StatusCreated, ran: true, body: "created",
			check: func(t *testing.T, w *httptest.ResponseRecorder) {
				assert.Equal(t, "yes", w.Header().Get("X-App"))
			},
		},
		{
			name:   "applied: a handler that writes nothing gets 200",
			inner:  func(w http.ResponseWriter, r *http.Request) {},
			req:    func() *http.Request { return headerRequest("order-1", "7") },
			status: http.StatusOK, ran: true, body: "",
		},
		{
			name:   "applied: identical repeated headers are one value",
			req:    func() *http.Request { r := headerRequest("order-1", "7"); r.Header.Add(revHeader, "7"); return r },
			status: http.StatusNoContent, ran: true,
		},
		{
			name:   "applied: the largest counter is not bounded by the skew",
			req:    func() *http.Request { return headerRequest("order-1", "18446744073709551615") },
			status: http.StatusNoContent, ran: true,
		},
		{
			name:   "applied: a timestamp within the skew",
			mwOpts: []middleware.Option{middleware.WithClock(fixedClock)},
			req: func() *http.Request {
				return headerRequest("order-1", clock.Add(4*time.Minute).Format(time.RFC3339Nano))
			},
			status: http.StatusNoContent, ran: true,
		},
		{
			name:   "applied: a far timestamp when the skew check is off",
			mwOpts: []middleware.Option{middleware.WithClock(fixedClock), middleware.WithMaxFutureSkew(0)},
			req:    func() *http.Request { return headerRequest("order-1", "2400-01-01T00:00:00Z") },
			status: http.StatusNoContent, ran: true,
		},
		{
			name:   "applied: a 4xx from the handler commits",
			inner:  func(w http.ResponseWriter, r *http.Request) { http.Error(w, "nope", http.StatusUnprocessableEntity) },
			req:    func() *http.Request { return headerRequest("order-1", "7") },
			status: http.StatusUnprocessableEntity, ran: true, body: "nope\n",
			check: func(t *testing.T, w *httptest.ResponseRecorder) {},
		},
		{
			name:   "duplicate",
			setup:  applied(7),
			req:    func() *http.Request { return headerRequest("order-1", "7") },
			status: http.StatusOK, outcome: "duplicate", body: "",
		},
		{
			name:   "stale",
			setup:  applied(7),
			req:    func() *http.Request { return headerRequest("order-1", "6") },
			status: http.StatusOK, outcome: "stale", body: "",
		},
		{
			name:   "stale with WithDropStatus",
			mwOpts: []middleware.Option{middleware.WithDropStatus(http.StatusAlreadyReported)},
			setup:  applied(7),
			req:    func() *http.Request { return headerRequest("order-1", "0") },
			status: http.StatusAlreadyReported, outcome: "stale", body: "",
		},
		{
			name:      "gap under Sequential ordering",
			guardOpts: []revguard.Option{revguard.WithOrdering(revguard.Sequential)},
			setup:     applied(7),
			req:       func() *http.Request { return headerRequest("order-1", "9") },
			status:    http.StatusConflict, problem: "#ErrGap", detail: "must wait for revision 8", retry: "1",
		},
		{
			name:      "gap with WithRetryAfter rounds up to seconds",
			mwOpts:    []middleware.Option{middleware.WithRetryAfter(2500 * time.Millisecond)},
			guardOpts: []revguard.Option{revguard.WithOrdering(revguard.Sequential)},
			req:       func() *http.Request { return headerRequest("order-1", "2") },
			status:    http.StatusConflict, problem: "#ErrGap", retry: "3",
		},
		{
			name:   "missing key header",
			req:    func() *http.Request { return headerRequest("", "7") },
			status: http.StatusBadRequest, problem: "#ErrInvalidKey", detail: `header "Event-Key": missing`,
		},
		{
			name:   "missing revision header",
			req:    func() *http.Request { return headerRequest("order-1", "") },
			status: http.StatusBadRequest, problem: "#ErrInvalidRevision", detail: `header "Event-Revision": missing`,
		},
		{
			name:   "malformed revision",
			req:    func() *http.Request { return headerRequest("order-1", "7.5") },
			status: http.StatusBadRequest, problem: "#ErrInvalidRevision", detail: `"7.5" is neither a decimal integer nor an RFC 3339 timestamp`,
		},
		{
			name:   "revision above uint64",
			req:    func() *http.Request { return headerRequest("order-1", "18446744073709551616") },
			status: http.StatusBadRequest, problem: "#ErrInvalidRevision", detail: "above the largest revision",
		},
		{
			name:   "conflicting repeated revision headers",
			req:    func() *http.Request { r := headerRequest("order-1", "7"); r.Header.Add(revHeader, "8"); return r },
			status: http.StatusBadRequest, problem: "#ErrInvalidRevision", detail: `header "Event-Revision": sent 2 times with different values`,
		},
		{
			name:   "conflicting repeated key headers",
			req:    func() *http.Request { r := headerRequest("order-1", "7"); r.Header.Add(keyHeader, "order-2"); return r },
			status: http.StatusBadRequest, problem: "#ErrInvalidKey", detail: "sent 2 times with different values",
		},
		{
			name:   "key that is not UTF-8",
			req:    func() *http.Request { return headerRequest("order-\xff", "7") },
			status: http.StatusBadRequest, problem: "#ErrInvalidKey", detail: "not valid UTF-8",
		},
		{
			name:   "key that is too long",
			req:    func() *http.Request { return headerRequest(strings.Repeat("k", 5000), "7") },
			status: http.StatusBadRequest, problem: "#ErrInvalidKey", detail: "5000 bytes, above the limit of 4096",
		},
		{
			name:   "timestamp beyond the skew",
			mwOpts: []middleware.Option{middleware.WithClock(fixedClock)},
			req: func() *http.Request {
				return headerRequest("order-1", clock.Add(6*time.Minute).Format(time.RFC3339))
			},
			status: http.StatusBadRequest, problem: "#ErrInvalidRevision", detail: "more than 5m0s ahead of the receiver's clock",
		},
		{
			name:   "timestamp beyond a configured skew",
			mwOpts: []middleware.Option{middleware.WithClock(fixedClock), middleware.WithMaxFutureSkew(time.Second)},
			req: func() *http.Request {
				return headerRequest("order-1", clock.Add(2*time.Second).Format(time.RFC3339))
			},
			status: http.StatusBadRequest, problem: "#ErrInvalidRevision", detail: "more than 1s ahead",
		},
		{
			name:      "step refused by the guard's WithMaxStep",
			guardOpts: []revguard.Option{revguard.WithMaxStep(10)},
			setup:     applied(7),
			req:       func() *http.Request { return headerRequest("order-1", "100") },
			status:    http.StatusBadRequest, problem: "#ErrInvalidRevision", detail: "beyond WithMaxStep(10)",
		},
		{
			name:    "JSON body that is not JSON",
			extract: middleware.JSONFields("id", "revision"),
			req: func() *http.Request {
				return httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"id": "a", "revision": 1`))
			},
			status: http.StatusBadRequest, problem: "#ErrInvalidEvent", detail: "body: not valid JSON",
		},
		{
			name:   "Content-Length above the limit",
			mwOpts: []middleware.Option{middleware.WithMaxBody(8)},
			req:    func() *http.Request { return headerRequest("order-1", "7") },
			status: http.StatusRequestEntityTooLarge, problem: "#ErrBodyTooLarge", detail: "Content-Length 17 is above the limit of 8 bytes",
			check: func(t *testing.T, w *httptest.ResponseRecorder) {
				assert.Equal(t, "close", w.Header().Get("Connection"))
			},
		},
		{
			name:    "chunked body above the limit, read by the extractor",
			mwOpts:  []middleware.Option{middleware.WithMaxBody(16)},
			extract: middleware.JSONFields("id", "revision"),
			req: func() *http.Request {
				r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"id":"order-1","revision":7}`))
				r.ContentLength = -1
				return r
			},
			status: http.StatusRequestEntityTooLarge, problem: "#ErrBodyTooLarge", detail: "more than the limit of 16 bytes",
		},
		{
			name:   "chunked body above the limit, read by the handler",
			mwOpts: []middleware.Option{middleware.WithMaxBody(4)},
			inner: func(w http.ResponseWriter, r *http.Request) {
				// The recorder has read the body already; read again to see
				// the limit's error.
				_, err := r.Body.Read(make([]byte, 1))
				var mbe *http.MaxBytesError
				if assert.ErrorAs(t, err, &mbe) {
					http.Error(w, "too big", http.StatusRequestEntityTooLarge)
				}
			},
			req: func() *http.Request {
				r := headerRequest("order-1", "7")
				r.ContentLength = -1
				return r
			},
			status: http.StatusRequestEntityTooLarge, ran: true, body: "too big\n",
		},
		{
			name:   "store unreachable",
			setup:  func(t *testing.T, e env) { e.store.failClaim.Store(true) },
			req:    func() *http.Request { return headerRequest("order-1", "7") },
			status: http.StatusServiceUnavailable, problem: "about:blank", detail: "could not be reached", retry: "1",
			check: func(t *testing.T, w *httptest.ResponseRecorder) {
				assert.NotContains(t, w.Body.String(), "10.0.0.7", "the store's error is not disclosed")
			},
		},
		{
			name:   "commit fails after a handler that wrote nothing",
			setup:  func(t *testing.T, e env) { e.store.failCommit.Store(true) },
			inner:  func(w http.ResponseWriter, r *http.Request) {},
			req:    func() *http.Request { return headerRequest("order-1", "7") },
			status: http.StatusServiceUnavailable, ran: true, problem: "about:blank", retry: "1",
		},
		{
			name:   "commit fails after the handler answered: its answer stands",
			setup:  func(t *testing.T, e env) { e.store.failCommit.Store(true) },
			inner:  func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "done") },
			req:    func() *http.Request { return headerRequest("order-1", "7") },
			status: http.StatusOK, ran: true, body: "done",
		},
		{
			name:   "a 5xx from the handler stands alone",
			inner:  func(w http.ResponseWriter, r *http.Request) { http.Error(w, "db down", http.StatusBadGateway) },
			req:    func() *http.Request { return headerRequest("order-1", "7") },
			status: http.StatusBadGateway, ran: true, body: "db down\n",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			store := newFlaky()
			extract := c.extract
			if extract == nil {
				extract = middleware.Headers(keyHeader, revHeader)
			}
			g := revguard.New(store, extract, c.guardOpts...)
			if c.setup != nil {
				c.setup(t, env{g, store})
			}
			inner := &recorder{serve: c.inner}
			w := serve(middleware.HTTP(g, c.mwOpts...)(inner), c.req())

			assert.Equal(t, c.ran, inner.count() == 1, "inner handler called")
			assert.Equal(t, c.outcome, w.Header().Get(middleware.OutcomeHeader))
			assert.Equal(t, c.retry, w.Header().Get("Retry-After"))
			if c.problem != "" {
				p := problemOf(t, w, c.status)
				assert.True(t, strings.HasSuffix(p["type"].(string), c.problem), "type %v", p["type"])
				assert.Contains(t, p["detail"], c.detail)
			} else {
				assert.Equal(t, c.status, w.Code)
				assert.Equal(t, c.body, w.Body.String())
			}
			if c.check != nil {
				c.check(t, w)
			}
			assert.NotEqual(t, http.StatusInternalServerError, w.Code)
		})
	}
}

func TestInnerBodyIntact(t *testing.T) {
	for _, ex := range []struct {
		name string
		fn   revguard.Extractor[*http.Request]
	}{
		{"Headers", middleware.Headers(keyHeader, revHeader)},
		{"JSONFields", middleware.JSONFields("data.id", "data.revision")},
	} {
		t.Run(ex.name, func(t *testing.T) {
			const body = `{"data":{"id":"order-1","revision":"2026-11-23T09:00:00Z"}, "pad": "` + "\xff\xfe" + `"}`
			g := revguard.New(memstore.New(), ex.fn)
			inner := &recorder{}
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
			r.Header.Set(keyHeader, "order-1")
			r.Header.Set(revHeader, "1")
			w := serve(middleware.HTTP(g, middleware.WithClock(fixedClock))(inner), r)
			require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
			assert.Equal(t, []string{body}, inner.bodies)
		})
	}
}

func TestNoBodyStaysNoBody(t *testing.T) {
	g := revguard.New(memstore.New(), middleware.Headers(keyHeader, revHeader))
	var got io.ReadCloser
	h := middleware.HTTP(g)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Body }))
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	r.Header.Set(keyHeader, "k")
	r.Header.Set(revHeader, "1")
	require.Equal(t, http.StatusOK, serve(h, r).Code)
	assert.Equal(t, http.NoBody, got)
	assert.Equal(t, http.NoBody, r.Body, "the request's own body is put back")
}

// A 5xx answer releases the claim, so the sender's retry runs the handler
// again; the retry's success commits, and the next retry is a duplicate.
func TestInner5xxReleases(t *testing.T) {
	g := revguard.New(memstore.New(), middleware.Headers(keyHeader, revHeader))
	fail := true
	inner := &recorder{serve: func(w http.ResponseWriter, r *http.Request) {
		if fail {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}}
	h := middleware.HTTP(g)(inner)

	assert.Equal(t, http.StatusServiceUnavailable, serve(h, headerRequest("k", "1")).Code)
	fail = false
	assert.Equal(t, http.StatusOK, serve(h, headerRequest("k", "1")).Code)
	w := serve(h, headerRequest("k", "1"))
	assert.Equal(t, "duplicate", w.Header().Get(middleware.OutcomeHeader))
	assert.Equal(t, 2, inner.count())
}

// Which inner answers record the revision: those a retry of the same
// request cannot change commit, so the retry is dropped; those that ask the
// sender to come back release, so the retry runs the handler again.
func TestInnerStatusDecidesCommit(t *testing.T) {
	for _, c := range []struct {
		status  int
		commits bool
	}{
		{http.StatusOK, true}, {http.StatusNoContent, true}, {http.StatusFound, true},
		{http.StatusBadRequest, true}, {http.StatusUnauthorized, true}, {http.StatusForbidden, true},
		{http.StatusNotFound, true}, {http.StatusConflict, true}, {http.StatusGone, true},
		{http.StatusUnprocessableEntity, true},
		{http.StatusRequestTimeout, false}, {http.StatusTooEarly, false}, {http.StatusTooManyRequests, false},
		{http.StatusInternalServerError, false}, {http.StatusServiceUnavailable, false},
	} {
		t.Run(http.StatusText(c.status), func(t *testing.T) {
			g := revguard.New(memstore.New(), middleware.Headers(keyHeader, revHeader))
			first := true
			inner := &recorder{serve: func(w http.ResponseWriter, r *http.Request) {
				if first {
					first = false
					if c.status == http.StatusTooManyRequests {
						w.Header().Set("Retry-After", "3")
					}
					w.WriteHeader(c.status)
					return
				}
				w.WriteHeader(http.StatusOK)
			}}
			h := middleware.HTTP(g)(inner)
			w := serve(h, headerRequest("k", "1"))
			require.Equal(t, c.status, w.Code, "the inner answer goes out as it is")
			retry := serve(h, headerRequest("k", "1"))
			if c.commits {
				assert.Equal(t, "duplicate", retry.Header().Get(middleware.OutcomeHeader), "a %d records the revision", c.status)
				assert.Equal(t, 1, inner.count())
			} else {
				assert.Equal(t, http.StatusOK, retry.Code)
				assert.Empty(t, retry.Header().Get(middleware.OutcomeHeader), "a %d must not record the revision", c.status)
				assert.Equal(t, 2, inner.count(), "the retry runs the handler")
			}
		})
	}
}

// A chunked body that goes past the limit while the handler reads it is
// cut; whatever the handler answers, the event it carried was not handled,
// so the next, valid delivery must apply.
func TestBodyPastLimitNeverCommits(t *testing.T) {
	g := revguard.New(memstore.New(), middleware.Headers(keyHeader, revHeader))
	var got []int
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		got = append(got, len(b))
		w.WriteHeader(http.StatusOK)
	})
	h := middleware.HTTP(g, middleware.WithMaxBody(16))(inner)
	big := headerRequest("k", "1")
	big.Body = io.NopCloser(strings.NewReader(strings.Repeat("x", 64)))
	big.ContentLength = -1 // chunked: only reading finds the size
	assert.Equal(t, http.StatusRequestEntityTooLarge, serve(h, big).Code)
	_, ok, err := g.Applied(context.Background(), "k")
	require.NoError(t, err)
	assert.False(t, ok, "nothing recorded for a body the handler never saw whole")

	small := headerRequest("k", "1")
	small.Body = io.NopCloser(strings.NewReader("ok"))
	small.ContentLength = -1
	w := serve(h, small)
	assert.Equal(t, http.StatusOK, w.Code)
	assert.Empty(t, w.Header().Get(middleware.OutcomeHeader), "the valid delivery is applied, not dropped")
	assert.Equal(t, []int{2}, got)
}

// A panic passes through untouched, with the claim released on the way.
func TestInnerPanicReleases(t *testing.T) {
	g := revguard.New(memstore.New(), middleware.Headers(keyHeader, revHeader))
	boom := true
	inner := &recorder{serve: func(w http.ResponseWriter, r *http.Request) {
		if boom {
			panic(http.ErrAbortHandler)
		}
	}}
	h := middleware.HTTP(g)(inner)

	assert.PanicsWithValue(t, http.ErrAbortHandler, func() { serve(h, headerRequest("k", "1")) })
	boom = false
	assert.Equal(t, http.StatusOK, serve(h, headerRequest("k", "1")).Code)
	assert.Equal(t, 2, inner.count())
	rev, ok, err := g.Applied(context.Background(), "k")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.EqualValues(t, 1, rev)
}

func TestInFlight(t *testing.T) {
	g := revguard.New(memstore.New(), middleware.Headers(keyHeader, revHeader))
	entered, release := make(chan struct{}), make(chan struct{})
	h := middleware.HTTP(g)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(revHeader) == "1" {
			close(entered)
			<-release
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	first := make(chan int)
	go func() { first <- serve(h, headerRequest("k", "1")).Code }()
	<-entered

	w := serve(h, headerRequest("k", "2"))
	p := problemOf(t, w, http.StatusConflict)
	assert.True(t, strings.HasSuffix(p["type"].(string), "#ErrInFlight"))
	assert.Equal(t, "1", w.Header().Get("Retry-After"))

	close(release)
	assert.Equal(t, http.StatusAccepted, <-first)
	assert.Equal(t, http.StatusAccepted, serve(h, headerRequest("k", "2")).Code)
}

// The handler runs under the guard's context: when the claim is lost, it is
// cancelled, and a handler that then answers nothing gets 409.
func TestLeaseLost(t *testing.T) {
	g := revguard.New(memstore.New(), middleware.Headers(keyHeader, revHeader), revguard.WithLease(30*time.Millisecond))
	h := middleware.HTTP(g)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// An operator's repair takes the claim away.
		require.NoError(t, g.SetApplied(context.WithoutCancel(r.Context()), "k", 0))
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
			t.Error("the handler's context was not cancelled")
		}
	}))
	w := serve(h, headerRequest("k", "1"))
	p := problemOf(t, w, http.StatusConflict)
	assert.True(t, strings.HasSuffix(p["type"].(string), "#ErrLeaseLost"))
}

func TestCancelledRequestIsNot500(t *testing.T) {
	g := revguard.New(memstore.New(), middleware.Headers(keyHeader, revHeader))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := headerRequest("k", "1").WithContext(ctx)
	w := serve(middleware.HTTP(g)(&recorder{}), r)
	assert.Equal(t, http.StatusServiceUnavailable, w.Code)
}

func TestOptionPanics(t *testing.T) {
	g := revguard.New(memstore.New(), middleware.Headers(keyHeader, revHeader))
	assert.PanicsWithValue(t, "middleware.HTTP: WithTolerance does not apply to it", func() {
		middleware.HTTP(g, middleware.WithTolerance(time.Minute))
	})
	assert.PanicsWithValue(t, "middleware.GitHubSignature: WithDropStatus does not apply to it", func() {
		middleware.GitHubSignature([]byte("s"), middleware.WithDropStatus(202))
	})
	assert.Panics(t, func() { middleware.GitHubSignature([]byte("s"), middleware.WithClock(time.Now)) })
	assert.Panics(t, func() { middleware.HTTP(nil) })
	assert.Panics(t, func() { middleware.HTTP(g)(nil) })
	assert.Panics(t, func() { middleware.WithDropStatus(500) })
	assert.Panics(t, func() { middleware.WithMaxBody(0) })
	assert.Panics(t, func() { middleware.WithMaxFutureSkew(-time.Second) })
	assert.Panics(t, func() { middleware.Headers("Bad Name", revHeader) })
	assert.Panics(t, func() { middleware.JSONFields("a..b", "r") })
	assert.Panics(t, func() { middleware.GitHubSignature(nil) })
	assert.Panics(t, func() { middleware.StripeSignature([]byte("s"), middleware.WithExtraSecrets([]byte{})) })
}
