package middleware_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
)

const (
	keyHeader = "Event-Key"
	revHeader = "Event-Revision"
)

// flakyStore is a memstore that fails on demand, as an unreachable store
// would.
type flakyStore struct {
	revguard.Store
	failClaim  atomic.Bool
	failCommit atomic.Bool
}

var errDown = errors.New("dial tcp 10.0.0.7:6379: connection refused")

func newFlaky() *flakyStore { return &flakyStore{Store: memstore.New()} }

func (s *flakyStore) Claim(ctx context.Context, req revguard.Request) (revguard.Reply, error) {
	if s.failClaim.Load() {
		return revguard.Reply{}, errDown
	}
	return s.Store.Claim(ctx, req)
}

func (s *flakyStore) Commit(ctx context.Context, ns, key string, token revguard.Token) error {
	if s.failCommit.Load() {
		return errDown
	}
	return s.Store.Commit(ctx, ns, key, token)
}

// recorder is an inner handler that remembers what it was given.
type recorder struct {
	mu     sync.Mutex
	calls  []string // "key@revision"
	bodies []string
	serve  func(w http.ResponseWriter, r *http.Request) // nil: 204
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.calls = append(rc.calls, r.Header.Get(keyHeader)+"@"+r.Header.Get(revHeader))
	rc.bodies = append(rc.bodies, string(b))
	rc.mu.Unlock()
	if rc.serve != nil {
		rc.serve(w, r)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (rc *recorder) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.calls)
}

func headerRequest(key, rev string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/hook", strings.NewReader(`{"hello":"world"}`))
	if key != "" {
		r.Header.Set(keyHeader, key)
	}
	if rev != "" {
		r.Header.Set(revHeader, rev)
	}
	return r
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// problemOf checks that w holds an RFC 9457 problem for status and returns it.
func problemOf(t *testing.T, w *httptest.ResponseRecorder, status int) map[string]any {
	t.Helper()
	require.Equal(t, status, w.Code, "body: %s", w.Body.String())
	require.Equal(t, "application/problem+json", w.Header().Get("Content-Type"))
	var p map[string]any
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &p), "body: %s", w.Body.String())
	assert.EqualValues(t, status, p["status"])
	assert.NotEmpty(t, p["type"])
	assert.NotEmpty(t, p["title"])
	assert.NotEmpty(t, p["detail"])
	return p
}
