// Command webhook is a webhook receiver that applies each order's events
// once and in order, whatever its senders redeliver or reorder, and an API
// whose clients may retry a POST without placing an order twice.
//
// It serves four routes:
//
//   - POST /webhook takes JSON deliveries, {"order":"42","revision":3,
//     "status":"shipped"}, signed GitHub-style: the header
//     X-Hub-Signature-256 is "sha256=" and the hex HMAC-SHA256 of the body
//     under -secret. The signature is checked first; then the guard lets a
//     delivery through only if its revision is above the order's applied
//     one. GET /orders/{id} shows an order's state.
//   - POST /api/orders places an order, {"item":"book","quantity":2}, once
//     per Idempotency-Key header: a retry with the same key and body gets
//     the first response again, byte for byte, with Idempotent-Replayed:
//     true; the same key with another body gets 422. GET /api/orders/{id}
//     shows a placed order.
//   - POST /events takes Standard Webhooks deliveries (standardwebhooks.com)
//     signed with -whsec, and handles each webhook-id once: a sender's
//     retry, signed anew with a new webhook-timestamp, gets 200 with
//     Revision-Outcome: duplicate.
//
// Try it:
//
//	go run ./examples/webhook -secret s3cret -whsec whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
//	curl -i localhost:8080/api/orders -H 'Idempotency-Key: k1' -d '{"item":"book","quantity":2}'
//	curl -i localhost:8080/api/orders -H 'Idempotency-Key: k1' -d '{"item":"book","quantity":2}'
//	go run ./examples/webhook -selftest
//
// The guards keep what they applied in memory (memstore), or in Redis with
// -redis host:port, so that several receivers share it and it survives
// restarts.
//
// With -selftest it starts itself on a free port, sends requests to every
// route (new, duplicate, out of order, replayed, reused key, badly signed,
// malformed), prints each exchange, and exits with status 1 if any answer
// differs from the expected one.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
	"github.com/revguard/revguard/backends/redisstore"
	"github.com/revguard/revguard/middleware"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	secret := flag.String("secret", os.Getenv("WEBHOOK_SECRET"), "the secret senders to /webhook sign with (default $WEBHOOK_SECRET)")
	whsec := flag.String("whsec", os.Getenv("STANDARD_WEBHOOKS_SECRET"), "the whsec_... secret senders to /events sign with; without it /events is off (default $STANDARD_WEBHOOKS_SECRET)")
	redisAddr := flag.String("redis", "", "keep revisions in the Redis server at this host:port instead of in memory")
	selftest := flag.Bool("selftest", false, "start on a free port, send test requests, check the answers and exit")
	flag.Parse()

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	store, closeStore := newStore(*redisAddr, logger)
	defer closeStore()
	s := secrets{github: []byte(*secret), standard: *whsec}
	var err error
	if *selftest {
		err = selfTest(s, store, logger)
	} else {
		err = serve(*addr, s, store, logger)
	}
	if err != nil {
		closeStore()
		fmt.Fprintln(os.Stderr, "webhook:", err)
		os.Exit(1)
	}
}

// secrets are what senders sign with: the raw GitHub-style secret for
// /webhook, and the "whsec_" one of Standard Webhooks for /events.
type secrets struct {
	github   []byte
	standard string
}

// order is the application's state for one order, and the shape of a
// delivery.
type order struct {
	ID       string `json:"order"`
	Revision uint64 `json:"revision"`
	Status   string `json:"status"`
}

// orders is the application behind /webhook: it trusts the guard to hand it each order's
// events once and in order, so it simply overwrites.
type orders struct {
	mu sync.Mutex
	m  map[string]order
}

func (o *orders) apply(w http.ResponseWriter, r *http.Request) {
	var ev order
	if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
		http.Error(w, "bad event: "+err.Error(), http.StatusUnprocessableEntity)
		return
	}
	o.mu.Lock()
	o.m[ev.ID] = ev
	o.mu.Unlock()
	fmt.Fprintf(w, "applied order %s revision %d: %s\n", ev.ID, ev.Revision, ev.Status)
}

func (o *orders) show(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	ev, ok := o.m[r.PathValue("id")]
	o.mu.Unlock()
	writeFound(w, r, ev, ok)
}

// writeFound answers with v as JSON if it was found, and 404 if not.
func writeFound(w http.ResponseWriter, r *http.Request, v any, found bool) {
	if !found {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// newStore returns memstore, or a Redis store when addr is set, and what
// closes it.
func newStore(addr string, logger *slog.Logger) (revguard.Store, func()) {
	if addr == "" {
		return memstore.New(), func() {}
	}
	client := redis.NewClient(&redis.Options{Addr: addr})
	store := redisstore.New(client)
	// Not fatal: while Redis is unreachable the middleware answers 503 and
	// senders retry.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := store.Preflight(ctx); err != nil {
		logger.Warn("redis preflight", "addr", addr, "error", err)
	}
	return store, func() { _ = client.Close() }
}

// handler builds the whole receiver: for each route, the signature check if
// there is one, then a guard, then the application. Each guard has a
// namespace of its own under ns, because order IDs, Idempotency-Keys and
// message IDs are different kinds of key that may well collide.
func handler(s secrets, store revguard.Store, logger *slog.Logger, ns string) http.Handler {
	// snippet:webhook-route
	guard := func(name string, x revguard.Extractor[*http.Request]) *revguard.Guard[*http.Request] {
		return revguard.New(store, x, revguard.WithLogger(logger), revguard.WithNamespace(ns+name))
	}
	mux := http.NewServeMux()

	app := &orders{m: map[string]order{}}
	g := guard("orders", middleware.JSONFields("order", "revision"))
	mux.Handle("POST /webhook", middleware.GitHubSignature(s.github)(middleware.HTTP(g)(http.HandlerFunc(app.apply))))
	mux.HandleFunc("GET /orders/{id}", app.show)
	// snippet:end

	// snippet:idempotency-api
	// The key is the client's Idempotency-Key and every request is
	// revision 1: the first request with a key applies, and WithReplay
	// answers every repeat with its response. With Redis, each key stays
	// stored; redisstore.WithTTL bounds that to the clients' retry window.
	api := &checkout{placed: map[string]placed{}}
	g = guard("idempotency-keys", middleware.IDHeader("Idempotency-Key"))
	mux.Handle("POST /api/orders", middleware.HTTP(g, middleware.WithReplay())(http.HandlerFunc(api.place)))
	// snippet:end
	mux.HandleFunc("GET /api/orders/{id}", api.show)

	// snippet:standard-webhooks
	if s.standard != "" {
		// webhook-id is the same on every retry of a message, unlike
		// webhook-timestamp, so it, not the time, tells a retry apart.
		g = guard("webhook-ids", middleware.WebhookID())
		mux.Handle("POST /events", middleware.StandardWebhooks(s.standard)(middleware.HTTP(g)(http.HandlerFunc(handleEvent))))
	}
	// snippet:end
	return mux
}

func newServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
}

func serve(addr string, s secrets, store revguard.Store, logger *slog.Logger) error {
	if len(s.github) == 0 {
		return errors.New("-secret (or $WEBHOOK_SECRET) is required: deliveries are refused unless signed with it")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := newServer(handler(s, store, logger, ""))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Info("listening", "addr", "http://"+ln.Addr().String(), "store", fmt.Sprintf("%T", store))
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}
