package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"

	"github.com/revguard/revguard/middleware"
)

// placed is an order placed through the API: the request's body, and the
// response's with the ID.
type placed struct {
	ID       string `json:"id,omitempty"`
	Item     string `json:"item"`
	Quantity int    `json:"quantity"`
}

// checkout is the API: it places an order on every call, with no
// idempotency of its own. The guard in front runs it once per
// Idempotency-Key, and WithReplay answers a client's retry with the
// response it gave the first time, new order ID included.
type checkout struct {
	mu     sync.Mutex
	placed map[string]placed
}

func (c *checkout) place(w http.ResponseWriter, r *http.Request) {
	var o placed
	if err := json.NewDecoder(r.Body).Decode(&o); err != nil || o.Item == "" || o.Quantity < 1 {
		// A 422 commits too: a retry of the same bad request gets it again.
		middleware.WriteProblem(w, http.StatusUnprocessableEntity, "about:blank", "Invalid order", `want {"item":"...","quantity":1 or more}`)
		return
	}
	c.mu.Lock()
	o.ID = fmt.Sprintf("ord_%d", len(c.placed)+1)
	c.placed[o.ID] = o
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Location", "/api/orders/"+o.ID)
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(o)
}

func (c *checkout) show(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	o, ok := c.placed[r.PathValue("id")]
	c.mu.Unlock()
	writeFound(w, r, o, ok)
}
