package middleware

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
)

// responseWriter is the inner handler's http.ResponseWriter. It records the
// status the handler sent, which decides whether the claim is committed, and
// whether anything was sent at all, after which the middleware must not
// answer itself. Flush, Hijack and ReadFrom reach the writer underneath,
// and Unwrap lets http.ResponseController find its deadlines and full
// duplex.
type responseWriter struct {
	w        http.ResponseWriter
	status   int        // the final status sent; 0 before
	hijacked bool       // the handler took the connection
	rec      *recording // the body kept for WithReplay; nil without it
}

var (
	_ http.Flusher  = (*responseWriter)(nil)
	_ http.Hijacker = (*responseWriter)(nil)
	_ io.ReaderFrom = (*responseWriter)(nil)
)

// sent reports whether the response has begun, so that nothing else may be
// written.
func (rw *responseWriter) sent() bool { return rw.status != 0 || rw.hijacked }

// code is the status the client gets: net/http sends 200 for a handler that
// wrote nothing, and a hijacked connection is the handler's to answer.
func (rw *responseWriter) code() int {
	if rw.status == 0 {
		return http.StatusOK
	}
	return rw.status
}

func (rw *responseWriter) Header() http.Header { return rw.w.Header() }

func (rw *responseWriter) WriteHeader(code int) {
	// Informational responses (103 Early Hints) may precede the final one;
	// 101 is final, as net/http treats it.
	if rw.status == 0 && (code < 100 || code > 199 || code == http.StatusSwitchingProtocols) {
		rw.status = code
	}
	rw.w.WriteHeader(code)
}

func (rw *responseWriter) Write(p []byte) (int, error) {
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	if rw.rec != nil {
		rw.rec.write(p)
	}
	return rw.w.Write(p)
}

// Unwrap returns the writer underneath, for http.ResponseController.
func (rw *responseWriter) Unwrap() http.ResponseWriter { return rw.w }

// FlushError is what http.ResponseController.Flush calls: it flushes the
// writer underneath and returns its error, http.ErrNotSupported included.
func (rw *responseWriter) FlushError() error {
	if rw.rec != nil {
		rw.rec.streamed = true // a streamed response is not replayed
	}
	err := http.NewResponseController(rw.w).Flush()
	// A flush sends the header, with 200 if none was written.
	if rw.status == 0 && !errors.Is(err, http.ErrNotSupported) {
		rw.status = http.StatusOK
	}
	return err
}

// Flush implements http.Flusher for handlers that assert it.
func (rw *responseWriter) Flush() { _ = rw.FlushError() }

// Hijack implements http.Hijacker. Where the writer underneath cannot hijack
// (HTTP/2), it returns an error wrapping http.ErrNotSupported.
func (rw *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, b, err := http.NewResponseController(rw.w).Hijack()
	if err == nil {
		rw.hijacked = true
		if rw.rec != nil {
			rw.rec.streamed = true
		}
	}
	return c, b, err
}

// ReadFrom implements io.ReaderFrom, so that io.Copy from a file keeps
// net/http's sendfile path.
func (rw *responseWriter) ReadFrom(src io.Reader) (int64, error) {
	if rw.rec != nil { // through Write, which keeps what it sends
		return io.Copy(writerOnly{rw}, src)
	}
	var n int64
	var err error
	if rf, ok := rw.w.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(writerOnly{rw.w}, src)
	}
	// net/http sends the header with the first byte, not before.
	if rw.status == 0 && n > 0 {
		rw.status = http.StatusOK
	}
	return n, err
}

// writerOnly hides ReadFrom so that io.Copy does not call back into it.
type writerOnly struct{ io.Writer }
