package middleware_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
	"github.com/revguard/revguard/middleware"
)

// FuzzReplay sends WithReplay a sequence of requests, one per input byte,
// and checks every answer against a model of what was applied: a replay is
// byte for byte the first response to the same key, revision, method, path
// and body; a 422 comes only for another request under an applied key and
// revision; a committed revision never runs the handler again; nothing is
// ever a 500.
//
// Each byte chooses, from its low bits up, the key (1 bit), the revision
// (2 bits), the body (3 bits, which also decide what the handler does with
// it: see replayBodies) and the method and path (2 bits).
func FuzzReplay(f *testing.F) {
	f.Add([]byte{0x00, 0x00})                         // a repeat: replayed
	f.Add([]byte{0x00, 0x08, 0x20, 0x40, 0x60})       // another body, method, path: 422s
	f.Add([]byte{0x00, 0x01, 0x02, 0x00, 0x01})       // two keys, a newer revision, stale repeats
	f.Add([]byte{0x20, 0x20, 0x00, 0x00})             // a 5xx releases: its retry with another body applies
	f.Add([]byte{0x28, 0x28, 0x08})                   // a 404 commits and is replayed
	f.Add([]byte{0x30, 0x30, 0x38, 0x38})             // too large, streamed: the drop answer
	f.Add([]byte{0x00, 0x80, 0x80, 0x40, 0x40, 0xc0}) // /a/b and /a%2Fb are two paths
	f.Add([]byte{0x10, 0x08, 0x10})                   // a body written by io.Copy, replayed
	f.Add([]byte{0x06, 0x04, 0x02, 0x00, 0x06})       // revisions down then back up
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 64 {
			in = in[:64]
		}
		s := newReplayScenario()
		for i, b := range in {
			s.send(t, i, replayStep{
				key:    "key-" + strconv.Itoa(int(b&1)),
				rev:    uint64(b>>1&3) + 1,
				body:   replayBodies[b>>3&7],
				target: replayTargets[b>>6&3],
			})
		}
	})
}

type replayStep struct {
	key    string
	rev    uint64
	body   *string // nil: a request without a body
	target [2]string
}

func ptr(s string) *string { return &s }

// replayBodies are the request bodies; some make the handler do something
// other than answer 201.
var replayBodies = [8]*string{
	nil,
	ptr(""), // the same fingerprint as no body
	ptr("a"),
	ptr("copy"),  // written with io.Copy, through ReadFrom
	ptr("fail"),  // 503: the claim is released
	ptr("gone"),  // 404: committed, and kept
	ptr("big"),   // a response over DefaultMaxReplayBody: committed, not kept
	ptr("flush"), // a streamed response: committed, not kept
}

// replayTargets are the methods and paths; the last two are one r.URL.Path
// but two escaped paths.
var replayTargets = [4][2]string{
	{http.MethodPost, "/orders"},
	{http.MethodPut, "/orders"},
	{http.MethodPost, "/a/b"},
	{http.MethodPost, "/a%2Fb"},
}

// replayResponse is what the client got, or what the model expects.
type replayResponse struct {
	status      int
	contentType string
	body        string
}

// replayApplied is the model's state of one key.
type replayApplied struct {
	rev    uint64
	fp     string          // method, escaped path and body of the applied request
	kept   *replayResponse // nil: applied without a kept response
	fpOnly bool            // the response was not kept, its fingerprint was
}

type replayScenario struct {
	h       http.Handler
	runs    int
	last    *replayResponse // what the handler answered in the latest run
	applied map[string]replayApplied
	done    map[string]int // runs that committed, by key@rev
}

func newReplayScenario() *replayScenario {
	s := &replayScenario{applied: map[string]replayApplied{}, done: map[string]int{}}
	g := revguard.New(memstore.New(), middleware.Headers(keyHeader, revHeader))
	s.h = middleware.HTTP(g, middleware.WithReplay())(http.HandlerFunc(s.inner))
	return s
}

// inner answers with what identifies the request and the run, so that a
// replay of any other run, request or entity shows.
func (s *replayScenario) inner(w http.ResponseWriter, r *http.Request) {
	s.runs++
	body, _ := io.ReadAll(r.Body)
	sum := sha256.Sum256(body)
	resp := &replayResponse{
		status:      http.StatusCreated,
		contentType: "text/plain; run=" + strconv.Itoa(s.runs),
		body: fmt.Sprintf("resp:%s@%s:%s %s:%s#%d", r.Header.Get(keyHeader), r.Header.Get(revHeader),
			r.Method, r.URL.EscapedPath(), hex.EncodeToString(sum[:8]), s.runs),
	}
	switch string(body) {
	case "fail":
		resp.status = http.StatusServiceUnavailable
	case "gone":
		resp.status = http.StatusNotFound
	case "big":
		resp.body += strings.Repeat(".", middleware.DefaultMaxReplayBody)
	}
	s.last = resp
	w.Header().Set("Content-Type", resp.contentType)
	w.Header().Set("X-Run", strconv.Itoa(s.runs)) // not kept
	w.WriteHeader(resp.status)
	switch string(body) {
	case "copy", "big":
		_, _ = io.Copy(w, strings.NewReader(resp.body))
	case "flush":
		_, _ = io.WriteString(w, resp.body)
		_ = http.NewResponseController(w).Flush()
	default:
		_, _ = io.WriteString(w, resp.body)
	}
}

func (s *replayScenario) send(t *testing.T, i int, st replayStep) {
	t.Helper()
	var rd io.Reader
	text := ""
	if st.body != nil {
		rd, text = strings.NewReader(*st.body), *st.body
	}
	fp := st.target[0] + " " + st.target[1] + " " + text
	r := httptest.NewRequest(st.target[0], st.target[1], rd)
	r.Header.Set(keyHeader, st.key)
	r.Header.Set(revHeader, strconv.FormatUint(st.rev, 10))
	runs := s.runs
	w := serve(s.h, r)
	ran := s.runs > runs
	got := replayResponse{status: w.Code, contentType: w.Header().Get("Content-Type"), body: w.Body.String()}
	replayed := w.Header().Get(middleware.ReplayedHeader) == "true"
	at := fmt.Sprintf("request %d (%s@%d %s %s body %q)", i, st.key, st.rev, st.target[0], st.target[1], text)

	if w.Code == http.StatusInternalServerError {
		t.Fatalf("%s: 500: %s", at, got.body)
	}
	id := st.key + "@" + strconv.FormatUint(st.rev, 10)
	cur, seen := s.applied[st.key]
	switch {
	case !seen || st.rev > cur.rev: // new: the handler runs
		if !ran || replayed {
			t.Fatalf("%s: a new revision did not run the handler (ran %v, replayed %v, status %d)", at, ran, replayed, w.Code)
		}
		if got != *s.last {
			t.Fatalf("%s: the client got %+v, not the handler's %+v", at, got, *s.last)
		}
		if s.last.status >= 500 {
			return // released: nothing applied
		}
		if s.done[id]++; s.done[id] > 1 {
			t.Fatalf("%s: the handler ran twice for a committed revision", at)
		}
		a := replayApplied{rev: st.rev, fp: fp}
		if text != "big" && text != "flush" {
			a.kept = s.last
		} else {
			a.fpOnly = true // the fingerprint is kept, the response is not
		}
		s.applied[st.key] = a
	case ran:
		t.Fatalf("%s: the handler ran for a revision already applied (%d)", at, cur.rev)
	case st.rev < cur.rev:
		expectDrop(t, at, w, "stale", replayed)
	case cur.kept == nil && (!cur.fpOnly || cur.fp == fp):
		expectDrop(t, at, w, "duplicate", replayed)
	case cur.fp != fp:
		if w.Code != http.StatusUnprocessableEntity || replayed {
			t.Fatalf("%s: another request under an applied key and revision got %d (replayed %v), want 422", at, w.Code, replayed)
		}
	default:
		if !replayed {
			t.Fatalf("%s: a repeat was not replayed: %d %q", at, w.Code, got.body)
		}
		if got != *cur.kept {
			t.Fatalf("%s: replayed %+v, want the first response %+v", at, got, *cur.kept)
		}
		if x := w.Header().Get("X-Run"); x != "" {
			t.Fatalf("%s: replayed a header that is not kept: X-Run %s", at, x)
		}
	}
}

func expectDrop(t *testing.T, at string, w *httptest.ResponseRecorder, outcome string, replayed bool) {
	t.Helper()
	if w.Code != http.StatusOK || replayed || w.Header().Get(middleware.OutcomeHeader) != outcome {
		t.Fatalf("%s: got %d, %s %q (replayed %v), want the %s drop answer", at, w.Code, middleware.OutcomeHeader,
			w.Header().Get(middleware.OutcomeHeader), replayed, outcome)
	}
}
