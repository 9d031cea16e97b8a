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
	payload := []byte(`{"id":"order-1","status":"paid"}`)
	run := func(b *testing.B, h http.Handler, want int, newRev bool) {
		body := rewindBody{bytes.NewReader(payload)}
		r := httptest.NewRequest(http.MethodPost, "/hook", nil)
		r.Header.Set(keyHeader, "order-1")
		revs := []string{"1"}
		r.Header[revHeader] = revs
		w := &discard{h: http.Header{}}
		var rev uint64 = 1 << 40
		b.ReportAllocs()
		for b.Loop() {
			if newRev {
				rev++
			}
			revs[0] = strconv.FormatUint(rev, 10)
			body.Reset(payload)
			r.Body, r.ContentLength = body, int64(len(payload))
			clear(w.h)
			w.code = 0
			h.ServeHTTP(w, r)
			if w.code != want {
				b.Fatalf("status %d, want %d", w.code, want)
			}
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
