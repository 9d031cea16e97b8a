// Command webhook is a webhook receiver that applies each order's events
// once and in order, whatever its senders redeliver or reorder.
//
// Deliveries are POSTed to /webhook as JSON, {"order":"42","revision":3,
// "status":"shipped"}, signed GitHub-style: the header X-Hub-Signature-256
// is "sha256=" and the hex HMAC-SHA256 of the body under -secret. The
// signature is checked first; then the guard lets a delivery through only
// if its revision is above the order's applied one. GET /orders/{id} shows
// an order's state.
//
//	go run ./examples/webhook -secret s3cret
//	go run ./examples/webhook -selftest
//
// The guard keeps applied revisions in memory (memstore), or in Redis with
// -redis host:port, so that several receivers share them and they survive
// restarts.
//
// With -selftest it starts itself on a free port, sends signed deliveries
// (new, duplicate, out of order, badly signed, malformed), prints each
// exchange, and exits with status 1 if any answer differs from the
// expected one.
package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
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
	secret := flag.String("secret", os.Getenv("WEBHOOK_SECRET"), "the secret senders sign with (default $WEBHOOK_SECRET)")
	redisAddr := flag.String("redis", "", "keep revisions in the Redis server at this host:port instead of in memory")
	selftest := flag.Bool("selftest", false, "start on a free port, send test deliveries, check the answers and exit")
	flag.Parse()

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	store, closeStore := newStore(*redisAddr, logger)
	defer closeStore()
	var err error
	if *selftest {
		err = selfTest(*secret, store, logger)
	} else {
		err = serve(*addr, *secret, store, logger)
	}
	if err != nil {
		closeStore()
		fmt.Fprintln(os.Stderr, "webhook:", err)
		os.Exit(1)
	}
}

// order is the application's state for one order, and the shape of a
// delivery.
type order struct {
	ID       string `json:"order"`
	Revision uint64 `json:"revision"`
	Status   string `json:"status"`
}

// orders is the application: it trusts the guard to hand it each order's
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
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(ev)
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

// handler builds the whole receiver: signature check, then guard, then the
// application.
func handler(secret []byte, store revguard.Store, logger *slog.Logger, opts ...revguard.Option) http.Handler {
	opts = append([]revguard.Option{revguard.WithLogger(logger)}, opts...)
	g := revguard.New(store, middleware.JSONFields("order", "revision"), opts...)
	app := &orders{m: map[string]order{}}
	mux := http.NewServeMux()
	mux.Handle("POST /webhook", middleware.GitHubSignature(secret)(middleware.HTTP(g)(http.HandlerFunc(app.apply))))
	mux.HandleFunc("GET /orders/{id}", app.show)
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

func serve(addr, secret string, store revguard.Store, logger *slog.Logger) error {
	if secret == "" {
		return errors.New("-secret (or $WEBHOOK_SECRET) is required: deliveries are refused unless signed with it")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := newServer(handler([]byte(secret), store, logger))
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

// sign returns the X-Hub-Signature-256 value for body.
func sign(secret []byte, body string) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(body))
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// selfTest runs the receiver on a free port and checks its answers to the
// deliveries a sender makes.
func selfTest(secret string, store revguard.Store, logger *slog.Logger) error {
	key := []byte(secret)
	if len(key) == 0 {
		key = []byte(rand.Text())
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	// A namespace of its own, so that a shared store's earlier runs do not
	// make this one's events stale.
	srv := newServer(handler(key, store, logger, revguard.WithNamespace("webhook-selftest-"+rand.Text())))
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	client := &http.Client{Timeout: 10 * time.Second}

	type step struct {
		name     string
		method   string
		path     string
		body     string
		signWith []byte // nil: no body to sign
		status   int
		outcome  string // Revision-Outcome
		bodyHas  string // the response body contains this
	}
	ev := func(rev, status string) string {
		return `{"order":"42","revision":` + rev + `,"status":"` + status + `"}`
	}
	steps := []step{
		{name: "new event", method: "POST", path: "/webhook", body: ev("2", "paid"), signWith: key, status: 200, bodyHas: "applied order 42 revision 2"},
		{name: "duplicate", method: "POST", path: "/webhook", body: ev("2", "paid"), signWith: key, status: 200, outcome: "duplicate"},
		{name: "newer event", method: "POST", path: "/webhook", body: ev("3", "shipped"), signWith: key, status: 200, bodyHas: "applied order 42 revision 3"},
		{name: "out of order", method: "POST", path: "/webhook", body: ev("1", "created"), signWith: key, status: 200, outcome: "stale"},
		{name: "bad signature", method: "POST", path: "/webhook", body: ev("18446744073709551615", "hijacked"), signWith: []byte("guessed"), status: 401, bodyHas: "does not match"},
		{name: "malformed revision", method: "POST", path: "/webhook", body: ev(`"soon"`, "paid"), signWith: key, status: 400, bodyHas: `JSON field \"revision\"`},
		{name: "state", method: "GET", path: "/orders/42", status: 200, bodyHas: `"revision":3,"status":"shipped"`},
	}
	failed := 0
	for i, s := range steps {
		req, err := http.NewRequest(s.method, base+s.path, strings.NewReader(s.body))
		if err != nil {
			return err
		}
		fmt.Printf("%d. %s: %s %s", i+1, s.name, s.method, s.path)
		if s.signWith != nil {
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Hub-Signature-256", sign(s.signWith, s.body))
			fmt.Printf(" %s", s.body)
		}
		fmt.Println()
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		outcome := resp.Header.Get(middleware.OutcomeHeader)
		fmt.Printf("   %s", resp.Status)
		if outcome != "" {
			fmt.Printf(", %s: %s", middleware.OutcomeHeader, outcome)
		}
		if b := strings.TrimSpace(string(body)); b != "" {
			fmt.Printf(", %s", b)
		}
		fmt.Println()

		var wrong []string
		if resp.StatusCode != s.status {
			wrong = append(wrong, fmt.Sprintf("status %d, want %d", resp.StatusCode, s.status))
		}
		if outcome != s.outcome {
			wrong = append(wrong, fmt.Sprintf("%s %q, want %q", middleware.OutcomeHeader, outcome, s.outcome))
		}
		if !strings.Contains(string(body), s.bodyHas) {
			wrong = append(wrong, fmt.Sprintf("body lacks %q", s.bodyHas))
		}
		if len(wrong) > 0 {
			failed++
			fmt.Printf("   FAIL: %s\n", strings.Join(wrong, "; "))
		}
	}
	if failed > 0 {
		return fmt.Errorf("selftest: %d of %d exchanges differ from the expected", failed, len(steps))
	}
	fmt.Printf("selftest: all %d exchanges as expected\n", len(steps))
	return nil
}
