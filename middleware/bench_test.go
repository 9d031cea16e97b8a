package middleware_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
	"github.com/revguard/revguard/middleware"
)

// discard is a ResponseWriter that keeps nothing, so that the benchmark
// measures the middleware rather than a recorder.
type discard struct {
	h    http.Header
	code int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(code int)        { d.code = code }

type rewindBody struct{ *bytes.Reader }

func (rewindBody) Close() error { return nil }

// sender sends one prepared request again and again, rewriting only its
// revision header and rewinding its body, so that a benchmark measures the
// handler and not the request's making.
type sender struct {
	r    *http.Request
	body rewindBody
	revs []string
	w    *discard
	rev  uint64
}

var benchPayload = []byte(`{"id":"order-1","status":"paid"}`)

func newSender(path string) *sender {
	s := &sender{r: httptest.NewRequest(http.MethodPost, path, nil), body: rewindBody{bytes.NewReader(benchPayload)},
		revs: []string{"1"}, w: &discard{h: http.Header{}}, rev: 1 << 40}
	s.r.Header.Set(keyHeader, "order-1")
	s.r.Header[revHeader] = s.revs
	return s
}

// send sends the request to h, with the next revision if newRev, and fails
// b unless h answers want.
func (s *sender) send(b *testing.B, h http.Handler, newRev bool, want int) {
	if newRev {
		s.rev++
	}
	s.revs[0] = strconv.FormatUint(s.rev, 10)
	s.body.Reset(benchPayload)
	s.r.Body, s.r.ContentLength = s.body, int64(len(benchPayload))
	clear(s.w.h)
	s.w.code = 0
	h.ServeHTTP(s.w, s.r)
	if s.w.code != want {
		b.Fatalf("status %d, want %d", s.w.code, want)
	}
}

// BenchmarkOverhead measures what the middleware adds per request, on
// memstore with the Headers extractor: "bare" is the inner handler alone,
// "guarded" the same requests through HTTP, each with a new revision, and
// "dropped" a duplicate that never reaches the handler. Both pay the same
// request preparation, so the difference is the middleware's.
func BenchmarkOverhead(b *testing.B) {
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	})
	run := func(b *testing.B, h http.Handler, want int, newRev bool) {
		s := newSender("/hook")
		b.ReportAllocs()
		for b.Loop() {
			s.send(b, h, newRev, want)
		}
	}
	b.Run("bare", func(b *testing.B) { run(b, inner, http.StatusNoContent, true) })
	b.Run("guarded", func(b *testing.B) {
		g := revguard.New(memstore.New(), middleware.Headers(keyHeader, revHeader))
		run(b, middleware.HTTP(g)(inner), http.StatusNoContent, true)
	})
	b.Run("dropped", func(b *testing.B) {
		g := revguard.New(memstore.New(), middleware.Headers(keyHeader, revHeader))
		if err := g.SetApplied(b.Context(), "order-1", 1<<40); err != nil {
			b.Fatal(err)
		}
		run(b, middleware.HTTP(g)(inner), http.StatusOK, false)
	})
}
