package middleware_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
	"github.com/revguard/revguard/middleware"
)

// BenchmarkReplay measures what WithReplay adds per request, on memstore
// with the Headers extractor and an inner handler that answers 201 with a
// small JSON body: "without-replay" is HTTP alone and "with-replay" the
// same with WithReplay, each request with a new revision (the applied path,
// where the response is recorded and kept), and "replayed" a repeat of one
// applied request, answered from the kept response.
func BenchmarkReplay(b *testing.B) {
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"order":7,"status":"created"}`))
	})
	run := func(b *testing.B, h http.Handler, newRev bool) {
		s := newSender("/orders")
		if !newRev {
			s.send(b, h, false, http.StatusCreated) // the one applied request that every other repeats
		}
		b.ReportAllocs()
		for b.Loop() {
			s.send(b, h, newRev, http.StatusCreated)
		}
		if !newRev && s.w.h.Get(middleware.ReplayedHeader) != "true" {
			b.Fatal("the repeats were not replayed")
		}
	}
	guard := func() *revguard.Guard[*http.Request] {
		return revguard.New(memstore.New(), middleware.Headers(keyHeader, revHeader))
	}
	b.Run("without-replay", func(b *testing.B) { run(b, middleware.HTTP(guard())(inner), true) })
	b.Run("with-replay", func(b *testing.B) { run(b, middleware.HTTP(guard(), middleware.WithReplay())(inner), true) })
	b.Run("replayed", func(b *testing.B) { run(b, middleware.HTTP(guard(), middleware.WithReplay())(inner), false) })
}
