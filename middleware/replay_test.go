package middleware_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
	"github.com/revguard/revguard/backends/redisstore"
	"github.com/revguard/revguard/middleware"
)

// An API that creates orders, called with an Idempotency-Key: the key is
// the entity, and every request under it is revision 1.
func orderAPI(t *testing.T, store revguard.Store, opts ...middleware.Option) (http.Handler, *int) {
	t.Helper()
	g := revguard.New(store, middleware.Headers("Idempotency-Key", revHeader))
	runs := new(int)
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*runs++
		body, _ := middleware.ReadBody(r)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Location", "/orders/7")
		w.Header().Set("X-Request-Cost", "3") // not kept unless named
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"order":7,"request":` + string(body) + `}`))
	})
	return middleware.HTTP(g, append([]middleware.Option{middleware.WithReplay()}, opts...)...)(inner), runs
}

func postKey(h http.Handler, path, key, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	r.Header.Set("Idempotency-Key", key)
	r.Header.Set(revHeader, "1")
	return serve(h, r)
}

func TestReplay(t *testing.T) {
	for name, store := range map[string]func(t *testing.T) revguard.Store{
		"memstore": func(*testing.T) revguard.Store { return memstore.New() },
		"redisstore": func(t *testing.T) revguard.Store {
			c := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
			t.Cleanup(func() { _ = c.Close() })
			return redisstore.New(c)
		},
	} {
		t.Run(name, func(t *testing.T) {
			h, runs := orderAPI(t, store(t))
			first := postKey(h, "/orders", "key-1", `{"sku":"A"}`)
			require.Equal(t, http.StatusCreated, first.Code)
			assert.Empty(t, first.Header().Get(middleware.ReplayedHeader))

			again := postKey(h, "/orders", "key-1", `{"sku":"A"}`)
			assert.Equal(t, http.StatusCreated, again.Code)
			assert.Equal(t, first.Body.String(), again.Body.String(), "byte for byte")
			assert.Equal(t, "application/json", again.Header().Get("Content-Type"))
			assert.Equal(t, "/orders/7", again.Header().Get("Location"))
			assert.Empty(t, again.Header().Get("X-Request-Cost"), "only the headers that describe the body")
			assert.Equal(t, "true", again.Header().Get(middleware.ReplayedHeader))
			assert.Equal(t, 1, *runs, "the handler does not run for a replay")

			otherBody := postKey(h, "/orders", "key-1", `{"sku":"B"}`)
			p := problemOf(t, otherBody, http.StatusUnprocessableEntity)
			assert.Contains(t, p["detail"], "another method, path or body")
			otherPath := postKey(h, "/refunds", "key-1", `{"sku":"A"}`)
			problemOf(t, otherPath, http.StatusUnprocessableEntity)
			assert.Equal(t, 1, *runs)

			// Another key is another entity: its own first run.
			assert.Equal(t, http.StatusCreated, postKey(h, "/orders", "key-2", `{"sku":"A"}`).Code)
			assert.Equal(t, 2, *runs)
		})
	}
}

func TestReplayWithExtraHeaders(t *testing.T) {
	h, _ := orderAPI(t, memstore.New(), middleware.WithReplayHeaders("x-request-cost"))
	postKey(h, "/orders", "k", "{}")
	again := postKey(h, "/orders", "k", "{}")
	assert.Equal(t, "3", again.Header().Get("X-Request-Cost"))
}

// What cannot be kept gets the drop answer: the revision is recorded all
// the same, so the handler does not run twice.
func TestReplayNotKept(t *testing.T) {
	t.Run("body over WithMaxReplayBody", func(t *testing.T) {
		h, runs := orderAPI(t, memstore.New(), middleware.WithMaxReplayBody(8))
		postKey(h, "/orders", "k", `{"sku":"A"}`)
		again := postKey(h, "/orders", "k", `{"sku":"A"}`)
		assert.Equal(t, http.StatusOK, again.Code)
		assert.Equal(t, "duplicate", again.Header().Get(middleware.OutcomeHeader))
		assert.Equal(t, 1, *runs)
		problemOf(t, postKey(h, "/orders", "k", `{"sku":"B"}`), http.StatusUnprocessableEntity)
	})
	t.Run("streamed", func(t *testing.T) {
		g := revguard.New(memstore.New(), middleware.Headers("Idempotency-Key", revHeader))
		runs := 0
		h := middleware.HTTP(g, middleware.WithReplay())(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			runs++
			_, _ = w.Write([]byte("part"))
			_ = http.NewResponseController(w).Flush()
		}))
		postKey(h, "/", "k", "")
		again := postKey(h, "/", "k", "")
		assert.Equal(t, "duplicate", again.Header().Get(middleware.OutcomeHeader))
		assert.Equal(t, 1, runs)
	})
	t.Run("store without payloads", func(t *testing.T) {
		h, runs := orderAPI(t, struct{ revguard.Store }{memstore.New()})
		postKey(h, "/orders", "k", "{}")
		again := postKey(h, "/orders", "k", "{}")
		assert.Equal(t, "duplicate", again.Header().Get(middleware.OutcomeHeader))
		assert.Equal(t, 1, *runs)
	})
	t.Run("a 5xx keeps nothing, its retry's response is kept", func(t *testing.T) {
		g := revguard.New(memstore.New(), middleware.Headers("Idempotency-Key", revHeader))
		fail := true
		h := middleware.HTTP(g, middleware.WithReplay())(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if fail {
				http.Error(w, "down", http.StatusServiceUnavailable)
				return
			}
			_, _ = w.Write([]byte("done"))
		}))
		assert.Equal(t, http.StatusServiceUnavailable, postKey(h, "/", "k", "").Code)
		fail = false
		assert.Equal(t, "done", postKey(h, "/", "k", "").Body.String())
		again := postKey(h, "/", "k", "")
		assert.Equal(t, "done", again.Body.String())
		assert.Equal(t, "true", again.Header().Get(middleware.ReplayedHeader))
	})
}

func TestReplayOptionPanics(t *testing.T) {
	assert.Panics(t, func() { middleware.WithMaxReplayBody(0) })
	assert.Panics(t, func() { middleware.WithMaxReplayBody(middleware.DefaultMaxReplayBody + 1) })
}

// A client that retries a slow POST while the first is still running gets
// the first's response once it is done, rather than 409.
func TestWaitInFlight(t *testing.T) {
	build := func(opts ...middleware.Option) (http.Handler, chan struct{}, chan struct{}) {
		g := revguard.New(memstore.New(), middleware.Headers("Idempotency-Key", revHeader))
		started, release := make(chan struct{}, 1), make(chan struct{})
		h := middleware.HTTP(g, opts...)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			started <- struct{}{}
			<-release
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte("order 7"))
		}))
		return h, started, release
	}
	first := func(h http.Handler) chan *httptest.ResponseRecorder {
		done := make(chan *httptest.ResponseRecorder, 1)
		go func() { done <- postKey(h, "/orders", "k", "{}") }()
		return done
	}

	t.Run("waits and replays", func(t *testing.T) {
		h, started, release := build(middleware.WithReplay(), middleware.WithWaitInFlight(5*time.Second))
		done := first(h)
		<-started
		repeat := make(chan *httptest.ResponseRecorder, 1)
		go func() { repeat <- postKey(h, "/orders", "k", "{}") }()
		time.Sleep(30 * time.Millisecond) // the repeat is waiting, not answered
		select {
		case w := <-repeat:
			t.Fatalf("the repeat was answered %d while the first ran", w.Code)
		default:
		}
		close(release)
		assert.Equal(t, http.StatusCreated, (<-done).Code)
		w := <-repeat
		assert.Equal(t, http.StatusCreated, w.Code)
		assert.Equal(t, "order 7", w.Body.String())
		assert.Equal(t, "true", w.Header().Get(middleware.ReplayedHeader))
	})
	t.Run("gives up after d", func(t *testing.T) {
		h, started, release := build(middleware.WithReplay(), middleware.WithWaitInFlight(40*time.Millisecond))
		done := first(h)
		<-started
		w := postKey(h, "/orders", "k", "{}")
		problemOf(t, w, http.StatusConflict)
		assert.NotEmpty(t, w.Header().Get("Retry-After"))
		close(release)
		<-done
	})
	t.Run("without it, 409 at once", func(t *testing.T) {
		h, started, release := build(middleware.WithReplay())
		done := first(h)
		<-started
		problemOf(t, postKey(h, "/orders", "k", "{}"), http.StatusConflict)
		close(release)
		<-done
	})
}
