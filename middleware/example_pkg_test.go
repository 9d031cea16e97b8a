package middleware_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
	"github.com/revguard/revguard/middleware"
)

// Example serves a webhook whose sender retries until it gets a 2xx. The
// application's 503 releases the claim, so the retry runs it again; once
// the event is applied, a repeat is answered 200 without reaching it.
func Example() {
	g := revguard.New(memstore.New(), middleware.JSONFields("order.id", "order.version"))
	var calls atomic.Int32
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			http.Error(w, "database unavailable", http.StatusServiceUnavailable)
			return
		}
		fmt.Println("  app ships order 42")
		w.WriteHeader(http.StatusNoContent)
	})
	srv := httptest.NewServer(middleware.HTTP(g)(app))
	defer srv.Close()

	body := `{"order":{"id":"42","version":3}}`
	for attempt := 1; attempt <= 3; attempt++ {
		resp, err := http.Post(srv.URL, "application/json", strings.NewReader(body))
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Printf("attempt %d: %s", attempt, resp.Status)
		if o := resp.Header.Get(middleware.OutcomeHeader); o != "" {
			fmt.Printf(", %s: %s", middleware.OutcomeHeader, o)
		}
		fmt.Println()
	}
	// Output:
	// attempt 1: 503 Service Unavailable
	//   app ships order 42
	// attempt 2: 204 No Content
	// attempt 3: 200 OK, Revision-Outcome: duplicate
}
