package middleware_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
	"github.com/revguard/revguard/middleware"
)

func guardedHandler(inner http.HandlerFunc) (http.Handler, *revguard.Guard[*http.Request]) {
	g := revguard.New(memstore.New(), middleware.Headers(keyHeader, revHeader))
	return middleware.HTTP(g)(inner), g
}

func post(t *testing.T, url, key, rev string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader("x"))
	require.NoError(t, err)
	req.Header.Set(keyHeader, key)
	req.Header.Set(revHeader, rev)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

func TestFlusher(t *testing.T) {
	var isFlusher bool
	h, _ := guardedHandler(func(w http.ResponseWriter, r *http.Request) {
		f, ok := w.(http.Flusher)
		isFlusher = ok
		if ok {
			f.Flush()
		}
		// Flushing the header commits the response: a 5xx now is too late
		// to change the status, and to release the claim.
		w.WriteHeader(http.StatusInternalServerError)
	})
	w := serve(h, headerRequest("k", "1"))
	assert.True(t, isFlusher)
	assert.True(t, w.Flushed)
	assert.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, "duplicate", serve(h, headerRequest("k", "1")).Header().Get(middleware.OutcomeHeader))
}

func TestResponseController(t *testing.T) {
	var flushErr, deadlineErr error
	h, _ := guardedHandler(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		deadlineErr = rc.SetWriteDeadline(time.Now().Add(time.Minute))
		_, _ = io.WriteString(w, "part")
		flushErr = rc.Flush()
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp := post(t, srv.URL, "k", "1")
	body, _ := io.ReadAll(resp.Body)
	assert.Equal(t, "part", string(body))
	assert.NoError(t, flushErr)
	assert.NoError(t, deadlineErr, "deadlines reach the server's writer through Unwrap")

	// On a writer that cannot, the controller says so.
	w := serve(h, headerRequest("k", "2"))
	assert.Equal(t, http.StatusOK, w.Code)
	assert.ErrorIs(t, deadlineErr, http.ErrNotSupported)
}

func TestHijacker(t *testing.T) {
	h, g := guardedHandler(func(w http.ResponseWriter, r *http.Request) {
		hj, ok := w.(http.Hijacker)
		if !assert.True(t, ok) {
			return
		}
		conn, buf, err := hj.Hijack()
		if !assert.NoError(t, err) {
			return
		}
		defer func() { _ = conn.Close() }()
		_, _ = buf.WriteString("HTTP/1.1 202 Accepted\r\nContent-Length: 6\r\nConnection: close\r\n\r\nraw ok")
		_ = buf.Flush()
	})
	srv := httptest.NewServer(h)
	defer srv.Close()

	resp := post(t, srv.URL, "k", "1")
	body, _ := io.ReadAll(resp.Body)
	assert.Equal(t, http.StatusAccepted, resp.StatusCode)
	assert.Equal(t, "raw ok", string(body))
	// The client may read the answer before the handler has returned.
	assert.Eventually(t, func() bool {
		rev, ok, err := g.Applied(t.Context(), "k")
		return err == nil && ok && rev == 1
	}, 5*time.Second, time.Millisecond, "a hijacking handler commits")

	// Where hijacking is not possible, the error says so.
	var hjErr error
	h2, _ := guardedHandler(func(w http.ResponseWriter, r *http.Request) {
		_, _, hjErr = w.(http.Hijacker).Hijack()
	})
	serve(h2, headerRequest("k", "1"))
	assert.ErrorIs(t, hjErr, http.ErrNotSupported)
}

// readFromWriter records whether io.Copy reached its ReadFrom.
type readFromWriter struct {
	*httptest.ResponseRecorder
	readFrom bool
}

func (w *readFromWriter) ReadFrom(r io.Reader) (int64, error) {
	w.readFrom = true
	return io.Copy(w.ResponseRecorder, r)
}

func TestReaderFrom(t *testing.T) {
	var isReaderFrom bool
	h, _ := guardedHandler(func(w http.ResponseWriter, r *http.Request) {
		_, isReaderFrom = w.(io.ReaderFrom)
		// Hide strings.Reader's WriteTo, which io.Copy would prefer.
		_, _ = io.Copy(w, struct{ io.Reader }{strings.NewReader("copied")})
	})
	rw := &readFromWriter{ResponseRecorder: httptest.NewRecorder()}
	h.ServeHTTP(rw, headerRequest("k", "1"))
	assert.True(t, isReaderFrom)
	assert.True(t, rw.readFrom, "io.Copy reaches the server's ReadFrom")
	assert.Equal(t, "copied", rw.Body.String())

	// Without ReadFrom underneath, the copy still works.
	w := serve(h, headerRequest("k", "2"))
	assert.Equal(t, "copied", w.Body.String())

	// An empty copy sends nothing, and the middleware may still answer.
	h2, _ := guardedHandler(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(w, strings.NewReader(""))
	})
	assert.Equal(t, http.StatusOK, serve(h2, headerRequest("k", "1")).Code)

	// A file through a real server takes net/http's sendfile path.
	path := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(path, []byte(strings.Repeat("f", 4096)), 0o600))
	h3, _ := guardedHandler(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(path)
		if !assert.NoError(t, err) {
			return
		}
		defer func() { _ = f.Close() }()
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = io.Copy(w, f)
	})
	srv := httptest.NewServer(h3)
	defer srv.Close()
	resp := post(t, srv.URL, "k", "1")
	body, _ := io.ReadAll(resp.Body)
	assert.Len(t, body, 4096)
}

// Early Hints precede the final status, which alone decides the claim.
func TestInformationalStatus(t *testing.T) {
	fail := true
	h, _ := guardedHandler(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		if fail {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	srv := httptest.NewServer(h)
	defer srv.Close()

	assert.Equal(t, http.StatusServiceUnavailable, post(t, srv.URL, "k", "1").StatusCode)
	fail = false
	resp := post(t, srv.URL, "k", "1")
	assert.Equal(t, http.StatusOK, resp.StatusCode, "the 5xx after 103 released the claim")
	assert.Empty(t, resp.Header.Get(middleware.OutcomeHeader))
}

// Dial a raw connection so the test can send what no client would.
func rawRequest(t *testing.T, addr, req string) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer func() { _ = conn.Close() }()
	_, err = io.WriteString(conn, req)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	return resp.Status + " " + resp.Header.Get(middleware.OutcomeHeader) + " " + string(body)
}

func TestRawHeadersOverTheWire(t *testing.T) {
	inner := &recorder{}
	g := revguard.New(memstore.New(), middleware.Headers(keyHeader, revHeader))
	srv := httptest.NewServer(middleware.HTTP(g)(inner))
	defer srv.Close()
	addr := srv.Listener.Addr().String()

	// obs-text bytes reach the handler; they are not UTF-8.
	got := rawRequest(t, addr, "POST / HTTP/1.1\r\nHost: x\r\nEvent-Key: caf\xe9\r\nEvent-Revision: 1\r\nContent-Length: 0\r\n\r\n")
	assert.Contains(t, got, "400 Bad Request")
	assert.Contains(t, got, `not valid UTF-8`)

	got = rawRequest(t, addr, "POST / HTTP/1.1\r\nHost: x\r\nEvent-Key: a\r\nEvent-Revision: 1\r\nEvent-Revision: 2\r\nContent-Length: 0\r\n\r\n")
	assert.Contains(t, got, "400 Bad Request")
	assert.Contains(t, got, "sent 2 times with different values")

	got = rawRequest(t, addr, "POST / HTTP/1.1\r\nHost: x\r\nEvent-Key: a\r\nEvent-Revision:  5 \r\nContent-Length: 0\r\n\r\n")
	assert.Contains(t, got, "204 No Content")
	got = rawRequest(t, addr, "POST / HTTP/1.1\r\nHost: x\r\nEvent-Key: a\r\nEvent-Revision: 5\r\nContent-Length: 0\r\n\r\n")
	assert.Equal(t, "200 OK duplicate ", got)
	assert.Equal(t, 1, inner.count())
}
