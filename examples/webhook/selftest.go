package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/middleware"
)

// step is one request of the selftest and what its answer must be.
type step struct {
	name    string
	method  string
	path    string
	header  http.Header
	body    string
	show    string // what the printed request line shows of it
	status  int
	outcome string // Revision-Outcome
	bodyHas string // the response body contains this
	// want holds response headers that must have these values; "" means
	// absent.
	want map[string]string
	// sameAs names an earlier step whose answer this one must repeat byte
	// for byte: status, Location and body.
	sameAs string
}

// answer is what a step got back.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// selfTest runs the receiver on a free port and checks its answers to the
// requests senders and API clients make.
func selfTest(s secrets, store revguard.Store, logger *slog.Logger) error {
	if len(s.github) == 0 {
		s.github = []byte(rand.Text())
	}
	if s.standard == "" {
		s.standard = "whsec_" + base64.StdEncoding.EncodeToString([]byte(rand.Text()))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	// Namespaces of its own, so that a shared store's earlier runs do not
	// make this one's requests stale or duplicates.
	srv := newServer(handler(s, store, logger, "webhook-selftest-"+rand.Text()+"/"))
	go func() { _ = srv.Serve(ln) }()
	defer func() { _ = srv.Close() }()

	steps := append(append(githubSteps(s.github), apiSteps()...), standardSteps(s.standard)...)
	return run("http://"+ln.Addr().String(), steps)
}

// githubSteps send order events to /webhook, signed GitHub-style.
func githubSteps(key []byte) []step {
	ev := func(rev, status string) string {
		return `{"order":"42","revision":` + rev + `,"status":"` + status + `"}`
	}
	return []step{
		github("new event", ev("2", "paid"), key, step{status: 200, bodyHas: "applied order 42 revision 2"}),
		github("duplicate", ev("2", "paid"), key, step{status: 200, outcome: "duplicate"}),
		github("newer event", ev("3", "shipped"), key, step{status: 200, bodyHas: "applied order 42 revision 3"}),
		github("out of order", ev("1", "created"), key, step{status: 200, outcome: "stale"}),
		github("bad signature", ev("18446744073709551615", "hijacked"), []byte("guessed"), step{status: 401, bodyHas: "does not match"}),
		github("malformed revision", ev(`"soon"`, "paid"), key, step{status: 400, bodyHas: `JSON field \"revision\"`}),
		{name: "state", method: "GET", path: "/orders/42", status: 200, bodyHas: `"revision":3,"status":"shipped"`},
	}
}

// github returns want as a delivery of body to /webhook signed with key.
func github(name, body string, key []byte, want step) step {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(body))
	want.name, want.method, want.path, want.body, want.show = name, "POST", "/webhook", body, body
	want.header = http.Header{
		"Content-Type":        {"application/json"},
		"X-Hub-Signature-256": {"sha256=" + hex.EncodeToString(mac.Sum(nil))},
	}
	return want
}

// apiSteps place orders through /api/orders, as a client that retries
// does.
func apiSteps() []step {
	book, pens := `{"item":"book","quantity":2}`, `{"item":"pen","quantity":10}`
	first := map[string]string{middleware.ReplayedHeader: "", "Location": "/api/orders/ord_1"}
	return []step{
		idempotent("new order", "k1", book, step{status: 201, bodyHas: `"id":"ord_1"`, want: first}),
		// The client's retry after a lost response: the same order, not a
		// second one.
		idempotent("retry", "k1", book, step{status: 201, sameAs: "new order", want: map[string]string{middleware.ReplayedHeader: "true"}}),
		idempotent("key reused for another order", "k1", pens, step{status: 422,
			bodyHas: "Idempotency key reused", want: map[string]string{"Content-Type": "application/problem+json"}}),
		// ord_2, not ord_3: the retry placed nothing.
		idempotent("new key", "k2", pens, step{status: 201, bodyHas: `"id":"ord_2"`}),
		{name: "placed", method: "GET", path: "/api/orders/ord_1", status: 200, bodyHas: `"item":"book","quantity":2`},
	}
}

// idempotent returns want as a POST of body to /api/orders under key.
func idempotent(name, key, body string, want step) step {
	want.name, want.method, want.path, want.body = name, "POST", "/api/orders", body
	want.header = http.Header{"Content-Type": {"application/json"}, "Idempotency-Key": {key}}
	want.show = "Idempotency-Key: " + key + " " + body
	return want
}

// standardSteps send a message to /events as a Standard Webhooks sender
// does, retry included.
func standardSteps(secret string) []step {
	body := `{"type":"invoice.paid","data":{"invoice":"in_7"}}`
	now := time.Now()
	return []step{
		standard("new message", "msg_1", body, secret, now.Add(-time.Minute), step{status: 200, bodyHas: "handled message msg_1: invoice.paid"}),
		// A retry is the same message signed again at a later time.
		standard("sender's retry", "msg_1", body, secret, now, step{status: 200, outcome: "duplicate"}),
		standard("bad signature", "msg_2", body, "whsec_"+base64.StdEncoding.EncodeToString([]byte("guessed")), now, step{status: 401,
			bodyHas: "no signature matches", want: map[string]string{"Content-Type": "application/problem+json"}}),
	}
}

// standard returns want as the message id with body, sent to /events at
// time at and signed with secret as Standard Webhooks signs:
// v1,base64(HMAC-SHA256(key, id.timestamp.body)), where key is the
// base64-decoded secret without its "whsec_" prefix.
func standard(name, id, body, secret string, at time.Time, want step) step {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		panic("the selftest's own secret is not whsec_ and base64: " + err.Error())
	}
	ts := strconv.FormatInt(at.Unix(), 10)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "." + body))
	want.name, want.method, want.path, want.body = name, "POST", "/events", body
	want.header = http.Header{
		"Content-Type":      {"application/json"},
		"Webhook-Id":        {id},
		"Webhook-Timestamp": {ts},
		"Webhook-Signature": {"v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))},
	}
	want.show = "webhook-id: " + id + " webhook-timestamp: " + ts + " " + body
	return want
}

// run sends the steps in order, prints each exchange, and returns an error
// if any answer differs from the expected one.
func run(base string, steps []step) error {
	client := &http.Client{Timeout: 10 * time.Second}
	answers := make([]answer, len(steps))
	failed := 0
	for i, s := range steps {
		fmt.Println(strings.TrimSpace(fmt.Sprintf("%d. %s: %s %s %s", i+1, s.name, s.method, s.path, s.show)))
		a, err := send(client, base, s)
		if err != nil {
			return err
		}
		answers[i] = a
		printAnswer(a)
		if wrong := check(s, a, steps[:i], answers); len(wrong) > 0 {
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

func send(client *http.Client, base string, s step) (answer, error) {
	req, err := http.NewRequest(s.method, base+s.path, strings.NewReader(s.body))
	if err != nil {
		return answer{}, err
	}
	for name, vs := range s.header {
		req.Header[name] = vs
	}
	resp, err := client.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: body}, err
}

// printAnswer shows the status, the headers that tell what the guard did, and
// the body.
func printAnswer(a answer) {
	fmt.Printf("   %d %s", a.status, http.StatusText(a.status))
	for _, name := range []string{middleware.OutcomeHeader, middleware.ReplayedHeader, "Location"} {
		if v := a.header.Get(name); v != "" {
			fmt.Printf(", %s: %s", name, v)
		}
	}
	if b := strings.TrimSpace(string(a.body)); b != "" {
		fmt.Printf(", %s", b)
	}
	fmt.Println()
}

// check returns how a differs from what s expects; earlier are the steps
// before it and answers their answers, for sameAs.
func check(s step, a answer, earlier []step, answers []answer) []string {
	var wrong []string
	if a.status != s.status {
		wrong = append(wrong, fmt.Sprintf("status %d, want %d", a.status, s.status))
	}
	if got := a.header.Get(middleware.OutcomeHeader); got != s.outcome {
		wrong = append(wrong, fmt.Sprintf("%s %q, want %q", middleware.OutcomeHeader, got, s.outcome))
	}
	if !strings.Contains(string(a.body), s.bodyHas) {
		wrong = append(wrong, fmt.Sprintf("body lacks %q", s.bodyHas))
	}
	for name, v := range s.want {
		if got := a.header.Get(name); got != v {
			wrong = append(wrong, fmt.Sprintf("%s %q, want %q", name, got, v))
		}
	}
	if s.sameAs != "" {
		i := slices.IndexFunc(earlier, func(e step) bool { return e.name == s.sameAs })
		first := answers[i]
		if a.status != first.status || a.header.Get("Location") != first.header.Get("Location") || !bytes.Equal(a.body, first.body) {
			wrong = append(wrong, fmt.Sprintf("not the answer of %q byte for byte", s.sameAs))
		}
	}
	return wrong
}
