package middleware

import (
	"errors"
	"fmt"
	"io"
	"net/http"
)

// ErrBodyTooLarge is wrapped in the error an extractor or [ReadBody] returns
// for a body above the size limit; [HTTP] answers it with 413.
var ErrBodyTooLarge = errors.New("middleware: request body too large")

// body is what the middleware puts in r.Body: the request body under the
// size limit, buffered once an extractor has read it whole so that the
// inner handler still reads it from the start. It also carries the
// middleware's settings to the extractors, which see nothing of the
// middleware but the request; riding on the body costs no allocation
// beyond the limit reader every request needs anyway.
type body struct {
	src   io.ReadCloser
	cfg   *config
	limit int64
	n     int64 // bytes read from src
	err   error // sticky, as http.MaxBytesReader's

	full bool // buf holds the whole body and reads come from it
	buf  []byte
	off  int
}

func newBody(src io.ReadCloser, cfg *config) *body {
	return &body{src: src, cfg: cfg, limit: cfg.maxBody}
}

func (b *body) Read(p []byte) (int, error) {
	if b.full {
		if b.off >= len(b.buf) {
			return 0, io.EOF
		}
		n := copy(p, b.buf[b.off:])
		b.off += n
		return n, nil
	}
	return b.readSrc(p)
}

// readSrc reads from src, one byte past the limit at most, so that a body of
// exactly the limit passes and a larger one is caught.
func (b *body) readSrc(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if rest := b.limit - b.n; int64(len(p)) > rest+1 {
		p = p[:rest+1]
	}
	n, err := b.src.Read(p)
	if rest := b.limit - b.n; int64(n) > rest {
		n = int(rest)
		b.n = b.limit
		// The same error http.MaxBytesReader gives, so inner handlers that
		// look for it with errors.As still find it.
		b.err = &http.MaxBytesError{Limit: b.limit}
		return n, b.err
	}
	b.n += int64(n)
	if err != nil {
		b.err = err
	}
	return n, err
}

func (b *body) Close() error { return b.src.Close() }

// rewind makes a body read whole read again from the start.
func (b *body) rewind() {
	if b.full {
		b.off = 0
	}
}

// readAll reads the whole body into buf and rewinds it.
func (b *body) readAll(hint int64) ([]byte, error) {
	if b.full {
		return b.buf, nil
	}
	if b.n > 0 || (b.err != nil && !errors.Is(b.err, io.EOF)) {
		if errors.As(b.err, new(*http.MaxBytesError)) {
			return nil, tooLarge(b.limit)
		}
		return nil, &FieldError{Field: "body", Reason: "already partly read, so it cannot be read whole"}
	}
	// A layer in front (a signature check) may hold the bytes already.
	if in, ok := b.src.(*body); ok && in.full && in.off == 0 && int64(len(in.buf)) <= b.limit {
		b.buf, b.full = in.buf, true
		return b.buf, nil
	}
	size := int64(512)
	if hint > 0 {
		size = min(hint, b.limit) + 1
	}
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := b.readSrc(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, tooLarge(mbe.Limit)
			}
			return nil, &FieldError{Field: "body", Reason: "reading it failed: " + err.Error()}
		}
	}
	b.buf, b.full, b.off = buf, true, 0
	return buf, nil
}

func tooLarge(limit int64) error {
	return &FieldError{Reason: fmt.Sprintf("more than the limit of %d bytes", limit), Err: ErrBodyTooLarge}
}

// ReadBody returns r's body, read whole under the size limit, and leaves
// r.Body reading it again from the start, so that extractors and signature
// checks can look at a body the inner handler then reads intact. Inside [HTTP]
// the limit is [WithMaxBody]'s; elsewhere it is the WithMaxBody among opts, or
// [DefaultMaxBody] (opts count only outside HTTP, whose own options rule
// inside it). A body above it gives an error wrapping [ErrBodyTooLarge].
// Custom extractors that need the body should read it with ReadBody.
func ReadBody(r *http.Request, opts ...Option) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	b, ok := r.Body.(*body)
	if !ok {
		cfg := defaultConfig
		if len(opts) > 0 {
			cfg = newConfig(kindReadBody, opts)
		}
		b = newBody(r.Body, cfg)
		r.Body = b
	}
	return b.readAll(r.ContentLength)
}

// settings returns the configuration of the middleware r passed through, or
// the defaults.
func settings(r *http.Request) *config {
	if b, ok := r.Body.(*body); ok {
		return b.cfg
	}
	return defaultConfig
}
