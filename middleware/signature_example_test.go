package middleware_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
	"github.com/revguard/revguard/middleware"
)

// Each Standard Webhooks message is applied once, however often the sender
// retries it: the retry carries a new webhook-timestamp and signature, but
// the same webhook-id.
func ExampleStandardWebhooks() {
	g := revguard.New(memstore.New(), middleware.WebhookID(), revguard.WithNamespace("webhook-ids"))
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("  app handles", r.Header.Get("webhook-id"))
	})
	clock := middleware.WithClock(func() time.Time { return time.Unix(1614265330, 0) }) // for the example's fixed signature
	h := middleware.StandardWebhooks("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", clock)(middleware.HTTP(g)(app))

	for _, sig := range []string{
		"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
		"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
		"v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
	} {
		r := httptest.NewRequest(http.MethodPost, "/webhook", strings.NewReader(`{"test": 2432232314}`))
		r.Header.Set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
		r.Header.Set("webhook-timestamp", "1614265330")
		r.Header.Set("webhook-signature", sig)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println(strings.TrimSpace(fmt.Sprint(w.Code, " ", w.Header().Get(middleware.OutcomeHeader), w.Header().Get("Content-Type"))))
	}
	// Output:
	//   app handles msg_p5jXN8AQM9LWM0D4loKWxJek
	// 200
	// 200 duplicate
	// 401 application/problem+json
}

// A sender of one's own, or one without a named middleware: it signs
// "{X-Delivery}.{body}" and sends the base64 MAC in X-Signature.
func ExampleHMACSignature() {
	scheme := middleware.HMACScheme{
		Header:   "X-Signature",
		Encoding: middleware.Base64,
		Signed:   "{X-Delivery}.{body}",
	}
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Println("  app runs") })
	h := middleware.HMACSignature([]byte("hush"), scheme)(app)

	for _, sig := range []string{"NgKTpFHqzR9zz0GRccvq/lwRykgimFxR+mabckV/MUs=", "forged"} {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("{}"))
		r.Header.Set("X-Delivery", "d-1")
		r.Header.Set("X-Signature", sig)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println(w.Code)
	}
	// Output:
	//   app runs
	// 200
	// 401
}
