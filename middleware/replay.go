package middleware

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/revguard/revguard"
)

// ReplayedHeader is set, to "true", on a response replayed to a repeat.
const ReplayedHeader = "Idempotent-Replayed"

// DefaultMaxReplayBody is the largest response body [WithReplay] keeps when
// [WithMaxReplayBody] is not given.
const DefaultMaxReplayBody = 64 << 10

type replayConfig struct {
	maxBody int
	headers []string // canonical names of the headers kept with a response
}

// replayHeaders are the headers that describe a body, kept with it.
var replayHeaders = []string{"Content-Type", "Content-Encoding", "Content-Language", "Location", "Etag", "Last-Modified"}

// WithReplay makes [HTTP] answer a repeat of an applied request with the
// response the inner handler gave the first time, as an API answers a
// retried POST with an Idempotency-Key: its status, the headers that
// describe the body (Content-Type, Content-Encoding, Content-Language,
// Location, ETag, Last-Modified, and those of [WithReplayHeaders]) and the
// body, with Idempotent-Replayed: true added, and the inner handler does
// not run. The response is kept with the revision, in the store's commit
// itself (see [revguard.Payloads]), with a fingerprint of the request: its
// method, path and body's SHA-256. A repeat whose fingerprint differs gets
// 422, and the handler does not run either.
//
// What is not replayed gets today's answers: a stale delivery (nothing of
// it was kept), a repeat of a revision applied without a kept response (a
// response that committed but was streamed with Flush or Hijack, or whose
// body was over [WithMaxReplayBody]: its fingerprint is kept all the same,
// so another request still gets 422; or one applied before replay was
// on), a store that keeps no payloads, or a guard not in Claim mode. A
// repeat while the first is in flight gets 409 as before. It applies to
// HTTP.
func WithReplay() Option {
	return func(c *config) {
		c.only("WithReplay", kindHTTP)
		if c.replay == nil {
			c.replay = &replayConfig{maxBody: DefaultMaxReplayBody, headers: replayHeaders}
		}
	}
}

// WithMaxReplayBody sets the largest response body, in bytes, [WithReplay]
// keeps; a larger response commits without being kept, and a repeat of it
// gets the drop answer. It turns WithReplay on. The default is
// [DefaultMaxReplayBody] (64 KiB); it can be no larger, with the status and
// headers, than [revguard.MaxPayload].
func WithMaxReplayBody(n int) Option {
	if n <= 0 || n > DefaultMaxReplayBody {
		panic(fmt.Sprintf("middleware.WithMaxReplayBody(%d): want 1 to %d bytes", n, DefaultMaxReplayBody))
	}
	return func(c *config) {
		WithReplay()(c)
		c.replay.maxBody = n
	}
}

// WithReplayHeaders adds response headers that [WithReplay] keeps, beside the
// ones that describe the body. It turns WithReplay on.
func WithReplayHeaders(names ...string) Option {
	return func(c *config) {
		WithReplay()(c)
		for _, n := range names {
			n = http.CanonicalHeaderKey(n)
			if !slices.Contains(c.replay.headers, n) {
				c.replay.headers = append(slices.Clip(c.replay.headers), n)
			}
		}
	}
}

// recording is what WithReplay keeps of one exchange: the request's
// fingerprint, and the response as the inner handler writes it. The
// exchange holds it only with WithReplay, so requests without pay nothing.
type recording struct {
	sum      [sha256.Size]byte
	keep     []string // the headers kept with the response
	max      int
	body     []byte
	over     bool // the body went past max: not kept
	streamed bool // Flush or Hijack: not kept
}

func (rec *recording) write(p []byte) {
	if rec.over {
		return
	}
	if len(rec.body)+len(p) > rec.max {
		rec.over, rec.body = true, nil
		return
	}
	rec.body = append(rec.body, p...)
}

// fingerprint is what identifies a request to a repeat of it.
func fingerprint(r *http.Request, body []byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(r.Method))
	h.Write([]byte{0})
	h.Write([]byte(r.URL.EscapedPath()))
	h.Write([]byte{0})
	h.Write(body)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// A kept response is encoded as: version 1, the fingerprint, the status
// (uvarint), the number of header values, each as name and value with
// uvarint lengths, and the body. Status noResponse keeps the fingerprint of
// a request whose response was not kept.
const (
	replayVersion = 1
	noResponse    = 0
)

func encodeReplay(sum [sha256.Size]byte, status int, h http.Header, names []string, body []byte) []byte {
	b := make([]byte, 0, 1+len(sum)+8+len(body)+256)
	b = append(b, replayVersion)
	b = append(b, sum[:]...)
	b = binary.AppendUvarint(b, uint64(status)) //nolint:gosec // G115: 0 or what WriteHeader took (net/http panics outside 100-999); decodeReplay checks it
	n := 0
	for _, name := range names {
		n += len(h.Values(name))
	}
	b = binary.AppendUvarint(b, uint64(n))
	for _, name := range names {
		for _, v := range h.Values(name) {
			b = binary.AppendUvarint(b, uint64(len(name)))
			b = append(b, name...)
			b = binary.AppendUvarint(b, uint64(len(v)))
			b = append(b, v...)
		}
	}
	return append(b, body...)
}

type keptResponse struct {
	sum    [sha256.Size]byte
	status int
	header [][2]string
	body   []byte
}

var errBadReplay = errors.New("middleware: a kept response that cannot be read")

func decodeReplay(b []byte) (keptResponse, error) {
	var k keptResponse
	if len(b) < 1+sha256.Size || b[0] != replayVersion {
		return k, errBadReplay
	}
	copy(k.sum[:], b[1:])
	b = b[1+sha256.Size:]
	status, n := binary.Uvarint(b)
	if n <= 0 || (status != noResponse && (status < 100 || status > 999)) {
		return k, errBadReplay
	}
	k.status, b = int(status), b[n:]
	count, n := binary.Uvarint(b)
	if n <= 0 || count > uint64(len(b)) {
		return k, errBadReplay
	}
	b = b[n:]
	for range count {
		var kv [2]string
		for i := range kv {
			l, n := binary.Uvarint(b)
			if n <= 0 {
				return k, errBadReplay
			}
			if b = b[n:]; l > uint64(len(b)) {
				return k, errBadReplay
			}
			kv[i], b = string(b[:l]), b[l:]
		}
		k.header = append(k.header, kv)
	}
	k.body = b
	return k, nil
}

// replay answers a repeat with the kept response, or 422 when the repeat is
// another request under the same key and revision.
func (h *guarded) replay(w http.ResponseWriter, sum [sha256.Size]byte, kept []byte) {
	k, err := decodeReplay(kept)
	if err != nil {
		h.fail(w, err) // 503: nothing of the store's answer can be trusted
		return
	}
	if !bytes.Equal(k.sum[:], sum[:]) {
		writeProblem(w, http.StatusUnprocessableEntity, typeMismatch, "Idempotency key reused",
			"this key and revision were applied for a request with another method, path or body; send a new revision for a new request")
		return
	}
	if k.status == noResponse {
		h.drop(w, revguard.Duplicate)
		return
	}
	hd := w.Header()
	for _, kv := range k.header {
		hd.Add(kv[0], kv[1])
	}
	hd.Set(ReplayedHeader, "true")
	w.WriteHeader(k.status)
	_, _ = w.Write(k.body)
}
