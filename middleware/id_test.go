package middleware_test

import (
	"testing"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
	"github.com/revguard/revguard/middleware"
)

func TestIDHeader(t *testing.T) {
	runExtract(t, middleware.IDHeader("X-GitHub-Delivery"), []extractCase{
		{name: "the delivery id is the key, revision 1", req: withHeaders("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"), key: "72d3162e-cc78-11e3-81ab-4c9367dc0958", rev: 1},
		{name: "missing", req: withHeaders(), err: revguard.ErrInvalidKey, msg: `header "X-GitHub-Delivery": missing`},
		{name: "empty", req: withHeaders("X-GitHub-Delivery", ""), err: revguard.ErrInvalidKey},
		{name: "two that differ", req: withHeaders("X-GitHub-Delivery", "a", "X-GitHub-Delivery", "b"), err: revguard.ErrInvalidKey, msg: "different values"},
	})
}

func TestIDField(t *testing.T) {
	runExtract(t, middleware.IDField("id"), []extractCase{
		{name: "a Stripe event id", req: withBody("application/json", `{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","type":"invoice.paid","created":1686089970}`), key: "evt_1NG8Du2eZvKYlo2CUI79vXWy", rev: 1},
		{name: "an integer id", req: withBody("application/json", `{"id":42}`), key: "42", rev: 1},
		{name: "missing", req: withBody("application/json", `{"type":"invoice.paid"}`), err: revguard.ErrInvalidKey, msg: "missing"},
		{name: "not JSON", req: withBody("application/json", `id=1`), invalid: true},
	})
}

// A retried delivery with the same ID is a duplicate, a new ID is applied.
func TestIDHeaderThroughTheGuard(t *testing.T) {
	g := revguard.New(memstore.New(), middleware.IDHeader("X-GitHub-Delivery"), revguard.WithNamespace("github-deliveries"))
	inner := &recorder{}
	h := middleware.HTTP(g)(inner)
	send := func(id string) string {
		r := headerRequest("", "")
		r.Header.Set("X-GitHub-Delivery", id)
		return serve(h, r).Header().Get(middleware.OutcomeHeader)
	}
	if send("d1") != "" || send("d1") != "duplicate" || send("d2") != "" {
		t.Fatal("want d1 applied, its retry a duplicate, d2 applied")
	}
	if inner.count() != 2 {
		t.Fatalf("handler ran %d times, want 2", inner.count())
	}
}
