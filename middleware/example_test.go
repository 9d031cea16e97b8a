package middleware_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
	"github.com/revguard/revguard/middleware"
)

func ExampleHTTP() {
	// snippet:middleware-http
	g := revguard.New(memstore.New(), middleware.Headers("Event-Key", "Event-Revision"))
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("  app applies", r.Header.Get("Event-Key"), "revision", r.Header.Get("Event-Revision"))
		w.WriteHeader(http.StatusNoContent)
	})
	h := middleware.HTTP(g)(app)
	// snippet:end

	for _, rev := range []string{"2", "2", "1", "3", "three"} {
		r := httptest.NewRequest(http.MethodPost, "/webhook", strings.NewReader(`{"status":"paid"}`))
		r.Header.Set("Event-Key", "order-42")
		r.Header.Set("Event-Revision", rev)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)

		fmt.Printf("revision %s: %d", rev, w.Code)
		if o := w.Header().Get(middleware.OutcomeHeader); o != "" {
			fmt.Printf(", %s: %s", middleware.OutcomeHeader, o)
		}
		if w.Header().Get("Content-Type") == "application/problem+json" {
			var p struct{ Title, Detail string }
			_ = json.Unmarshal(w.Body.Bytes(), &p)
			fmt.Printf(", %s: %s", p.Title, p.Detail)
		}
		fmt.Println()
	}
	// Output:
	//   app applies order-42 revision 2
	// revision 2: 204
	// revision 2: 200, Revision-Outcome: duplicate
	// revision 1: 200, Revision-Outcome: stale
	//   app applies order-42 revision 3
	// revision 3: 204
	// revision three: 400, Invalid revision: header "Event-Revision": "three" is neither a decimal integer nor an RFC 3339 timestamp
}

func ExampleGitHubSignature() {
	secret := []byte("It's a Secret to Everybody")
	// snippet:middleware-github
	g := revguard.New(memstore.New(), middleware.JSONFields("order.id", "order.version"))
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "applied")
	})
	// The signature is checked first, so that no forged event reaches the
	// guard's store.
	h := middleware.GitHubSignature(secret)(middleware.HTTP(g)(app))
	// snippet:end

	deliver := func(body, signature string) {
		r := httptest.NewRequest(http.MethodPost, "/webhook", strings.NewReader(body))
		r.Header.Set("X-Hub-Signature-256", signature)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		out := []string{fmt.Sprint(w.Code)}
		if o := w.Header().Get(middleware.OutcomeHeader); o != "" {
			out = append(out, middleware.OutcomeHeader+": "+o)
		}
		if b := strings.TrimSpace(w.Body.String()); b != "" {
			out = append(out, b)
		}
		fmt.Println(strings.Join(out, " "))
	}
	sign := func(body string) string {
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte(body))
		return "sha256=" + hex.EncodeToString(mac.Sum(nil))
	}

	body := `{"order":{"id":"42","version":7}}`
	deliver(body, sign(body))
	deliver(body, sign(body))
	forged := `{"order":{"id":"42","version":18446744073709551615}}`
	deliver(forged, sign(body))
	// Output:
	// 200 applied
	// 200 Revision-Outcome: duplicate
	// 401 {"type":"about:blank","title":"Unauthorized","status":401,"detail":"header \"X-Hub-Signature-256\": the signature does not match the body"}
}
