package middleware_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
	"github.com/revguard/revguard/middleware"
)

type extractCase struct {
	name    string
	req     func() *http.Request
	key     string
	rev     revguard.Revision
	err     error  // the sentinel; nil for success
	invalid bool   // an error that wraps no sentinel (the guard calls it ErrInvalidEvent)
	msg     string // the error message contains this
}

func runExtract(t *testing.T, ex revguard.Extractor[*http.Request], cases []extractCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := c.req()
			key, rev, err := ex(r)
			switch {
			case c.invalid:
				require.Error(t, err)
				var fe *middleware.FieldError
				require.ErrorAs(t, err, &fe)
				assert.Nil(t, fe.Err)
			case c.err != nil:
				require.ErrorIs(t, err, c.err)
			default:
				require.NoError(t, err)
				assert.Equal(t, c.key, key)
				assert.Equal(t, c.rev, rev)
			}
			if c.msg != "" {
				assert.Contains(t, err.Error(), c.msg)
			}
		})
	}
}

func withHeaders(kv ...string) func() *http.Request {
	return func() *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("data"))
		for i := 0; i < len(kv); i += 2 {
			r.Header.Add(kv[i], kv[i+1])
		}
		return r
	}
}

func withBody(contentType, body string) func() *http.Request {
	return func() *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		return r
	}
}

func TestHeaders(t *testing.T) {
	runExtract(t, middleware.Headers("event-key", "EVENT-REVISION"), []extractCase{
		{name: "counter", req: withHeaders(keyHeader, "a", revHeader, "42"), key: "a", rev: 42},
		{name: "timestamp", req: withHeaders(keyHeader, "a", revHeader, "2001-02-03T04:05:06.5Z"), key: "a", rev: 981173106500000000},
		{name: "header names are case-insensitive", req: withHeaders("event-key", "a", "event-revision", "1"), key: "a", rev: 1},
		{name: "timestamp in the far future", req: withHeaders(keyHeader, "a", revHeader, "2400-01-01T00:00:00Z"), err: revguard.ErrInvalidRevision, msg: "ahead of the receiver's clock"},
		{name: "empty key", req: withHeaders(keyHeader, "", revHeader, "1"), err: revguard.ErrInvalidKey, msg: `header "event-key": empty`},
		{name: "negative", req: withHeaders(keyHeader, "a", revHeader, "-1"), err: revguard.ErrInvalidRevision},
		{name: "huge revision value", req: withHeaders(keyHeader, "a", revHeader, strings.Repeat("9", 1<<16)), err: revguard.ErrInvalidRevision, msg: "(65536 bytes)"},
		{name: "non-UTF-8 revision", req: withHeaders(keyHeader, "a", revHeader, "\xff\xfe"), err: revguard.ErrInvalidRevision},
		{name: "three key values, one different", req: withHeaders(keyHeader, "a", keyHeader, "a", keyHeader, "b", revHeader, "1"), err: revguard.ErrInvalidKey, msg: "sent 3 times"},
	})
}

func TestCloudEvents(t *testing.T) {
	const src = "https://example.com/orders"
	ce := func(kv ...string) func() *http.Request {
		return withHeaders(append([]string{"ce-specversion", "1.0", "ce-id", "x", "ce-type", "order.paid"}, kv...)...)
	}
	structured := func(body string) func() *http.Request {
		return withBody("application/cloudevents+json; charset=utf-8", body)
	}
	runExtract(t, middleware.CloudEvents(), []extractCase{
		{name: "binary: source, subject, sequence", req: ce("ce-source", src, "ce-subject", "42", "ce-sequence", "7"), key: revguard.Key(src, "42"), rev: 7},
		{name: "binary: source alone", req: ce("ce-source", src, "ce-sequence", "7"), key: revguard.Key(src), rev: 7},
		{name: "binary: percent-encoded subject", req: ce("ce-source", src, "ce-subject", "caf%C3%A9", "ce-sequence", "7"), key: revguard.Key(src, "café"), rev: 7},
		{name: "binary: time", req: ce("ce-source", src, "ce-time", "2001-02-03T04:05:06Z"), key: revguard.Key(src), rev: 981173106000000000},
		{name: "binary: sequence wins over time", req: ce("ce-source", src, "ce-time", "2001-02-03T04:05:06Z", "ce-sequence", "3"), key: revguard.Key(src), rev: 3},
		{name: "binary: zero-padded sequence", req: ce("ce-source", src, "ce-sequence", "000042"), key: revguard.Key(src), rev: 42},
		{name: "binary: time in the far future", req: ce("ce-source", src, "ce-time", "2400-01-01T00:00:00Z"), err: revguard.ErrInvalidRevision, msg: `header "ce-time"`},
		{name: "binary: time that is not RFC 3339", req: ce("ce-source", src, "ce-time", "1700000000"), err: revguard.ErrInvalidRevision, msg: "not an RFC 3339 timestamp"},
		{name: "binary: time before 1970", req: ce("ce-source", src, "ce-time", "1969-12-31T23:59:59Z"), err: revguard.ErrInvalidRevision, msg: "before 1970"},
		{name: "binary: sequence that is a timestamp", req: ce("ce-source", src, "ce-sequence", "2001-02-03T04:05:06Z"), err: revguard.ErrInvalidRevision, msg: "not a decimal counter (zero-padded digits are); order such events by time with CloudEventsByTime"},
		{name: "binary: empty sequence", req: ce("ce-source", src, "ce-sequence", ""), err: revguard.ErrInvalidRevision},
		{name: "binary: no revision", req: ce("ce-source", src), err: revguard.ErrInvalidRevision, msg: "both missing"},
		{name: "binary: no source", req: ce("ce-sequence", "1"), err: revguard.ErrInvalidKey, msg: `header "ce-source": missing`},
		{name: "binary: bad percent-encoding", req: ce("ce-source", "a%zz", "ce-sequence", "1"), err: revguard.ErrInvalidKey, msg: "percent-encoding"},
		{name: "binary: percent-encoded non-UTF-8", req: ce("ce-source", "a%FF", "ce-sequence", "1"), err: revguard.ErrInvalidKey, msg: "not valid UTF-8"},
		{name: "binary: empty subject", req: ce("ce-source", src, "ce-subject", "", "ce-sequence", "1"), err: revguard.ErrInvalidKey, msg: "present but empty"},
		{name: "binary: two sources", req: ce("ce-source", src, "ce-source", src+"/x", "ce-sequence", "1"), err: revguard.ErrInvalidKey, msg: "different values"},
		{name: "binary: huge source is hashed into a short key", req: ce("ce-source", strings.Repeat("s", 10000), "ce-sequence", "1"), key: revguard.Key(strings.Repeat("s", 10000)), rev: 1},

		{name: "structured: same key as binary", req: structured(`{"specversion":"1.0","id":"x","source":"` + src + `","subject":"café","sequence":"7","data":{}}`), key: revguard.Key(src, "café"), rev: 7},
		{name: "structured: sequence as a number", req: structured(`{"source":"s","sequence":18446744073709551615}`), key: revguard.Key("s"), rev: 1<<64 - 1},
		{name: "structured: time", req: structured(`{"source":"s","time":"2001-02-03T04:05:06Z"}`), key: revguard.Key("s"), rev: 981173106000000000},
		{name: "structured: null subject is absent", req: structured(`{"source":"s","subject":null,"sequence":"1"}`), key: revguard.Key("s"), rev: 1},
		{name: "structured: media type in capitals", req: withBody("Application/CloudEvents+JSON", `{"source":"s","sequence":"1"}`), key: revguard.Key("s"), rev: 1},
		{name: "structured: no source", req: structured(`{"sequence":"1"}`), err: revguard.ErrInvalidKey, msg: `JSON field "source": missing`},
		{name: "structured: source not a string", req: structured(`{"source":5,"sequence":"1"}`), err: revguard.ErrInvalidKey, msg: "is a number, not a string"},
		{name: "structured: empty source", req: structured(`{"source":"","sequence":"1"}`), err: revguard.ErrInvalidKey},
		{name: "structured: two sources", req: structured(`{"source":"a","source":"b","sequence":"1"}`), err: revguard.ErrInvalidKey, msg: "appears twice"},
		{name: "structured: sequence negative", req: structured(`{"source":"s","sequence":-1}`), err: revguard.ErrInvalidRevision, msg: "negative"},
		{name: "structured: sequence fraction", req: structured(`{"source":"s","sequence":"1.5"}`), err: revguard.ErrInvalidRevision},
		{name: "structured: time in the future", req: structured(`{"source":"s","time":"2400-01-01T00:00:00Z"}`), err: revguard.ErrInvalidRevision},
		{name: "structured: no revision", req: structured(`{"source":"s"}`), err: revguard.ErrInvalidRevision, msg: "both missing"},
		{name: "structured: not JSON", req: structured(`source=s`), invalid: true, msg: "not valid JSON"},
		{name: "structured: an array", req: structured(`[{"source":"s","sequence":"1"}]`), invalid: true, msg: "not a JSON object"},
		{name: "batched", req: withBody("application/cloudevents-batch+json", `[]`), invalid: true, msg: "batched"},
	})
}

func TestJSONFields(t *testing.T) {
	body := func(s string) func() *http.Request { return withBody("application/json", s) }
	runExtract(t, middleware.JSONFields("data.object.id", "rev"), []extractCase{
		{name: "string key, integer revision", req: body(`{"data":{"object":{"id":"evt_1"}},"rev":5}`), key: "evt_1", rev: 5},
		{name: "integer key", req: body(`{"data":{"object":{"id":42}},"rev":5}`), key: "42", rev: 5},
		{name: "negative integer key", req: body(`{"data":{"object":{"id":-42}},"rev":5}`), key: "-42", rev: 5},
		{name: "revision as a string", req: body(`{"data":{"object":{"id":"a"}},"rev":"5"}`), key: "a", rev: 5},
		{name: "revision as a timestamp", req: body(`{"data":{"object":{"id":"a"}},"rev":"2001-02-03T04:05:06Z"}`), key: "a", rev: 981173106000000000},
		{name: "largest revision, exactly", req: body(`{"data":{"object":{"id":"a"}},"rev":18446744073709551615}`), key: "a", rev: 1<<64 - 1},
		{name: "2^53+1 is not rounded", req: body(`{"data":{"object":{"id":"a"}},"rev":9007199254740993}`), key: "a", rev: 9007199254740993},
		{name: "other members and order do not matter", req: body(` {"rev":1,"x":[1,{"y":null}],"data":{"z":true,"object":{"n":{},"id":"a"}}} `), key: "a", rev: 1},
		{name: "escaped member names match", req: body(`{"d\u0061ta":{"object":{"id":"a"}},"rev":1}`), key: "a", rev: 1},
		{name: "surrogate pair", req: body(`{"data":{"object":{"id":"\ud83d\ude00"}},"rev":1}`), key: "😀", rev: 1},
		{name: "revision above uint64", req: body(`{"data":{"object":{"id":"a"}},"rev":18446744073709551616}`), err: revguard.ErrInvalidRevision, msg: "above the largest revision"},
		{name: "revision with a fraction", req: body(`{"data":{"object":{"id":"a"}},"rev":1.0}`), err: revguard.ErrInvalidRevision, msg: "not an integer"},
		{name: "revision with an exponent", req: body(`{"data":{"object":{"id":"a"}},"rev":1e3}`), err: revguard.ErrInvalidRevision, msg: "not an integer"},
		{name: "negative revision", req: body(`{"data":{"object":{"id":"a"}},"rev":-1}`), err: revguard.ErrInvalidRevision, msg: "negative"},
		{name: "boolean revision", req: body(`{"data":{"object":{"id":"a"}},"rev":true}`), err: revguard.ErrInvalidRevision, msg: "is a boolean"},
		{name: "null revision", req: body(`{"data":{"object":{"id":"a"}},"rev":null}`), err: revguard.ErrInvalidRevision, msg: `JSON field "rev": missing`},
		{name: "revision in the far future", req: body(`{"data":{"object":{"id":"a"}},"rev":"2400-01-01T00:00:00Z"}`), err: revguard.ErrInvalidRevision, msg: "ahead"},
		{name: "missing key", req: body(`{"data":{"object":{}},"rev":1}`), err: revguard.ErrInvalidKey, msg: `JSON field "data.object.id": missing`},
		{name: "parent null", req: body(`{"data":null,"rev":1}`), err: revguard.ErrInvalidKey, msg: "missing"},
		{name: "parent not an object", req: body(`{"data":{"object":"x"},"rev":1}`), err: revguard.ErrInvalidKey, msg: `"data.object" is a string, not an object`},
		{name: "key with a fraction", req: body(`{"data":{"object":{"id":4.2}},"rev":1}`), err: revguard.ErrInvalidKey, msg: "not an integer"},
		{name: "key that is an object", req: body(`{"data":{"object":{"id":{}}},"rev":1}`), err: revguard.ErrInvalidKey, msg: "is an object"},
		{name: "empty key", req: body(`{"data":{"object":{"id":""}},"rev":1}`), err: revguard.ErrInvalidKey, msg: "empty"},
		{name: "key not UTF-8", req: body(`{"data":{"object":{"id":"a` + "\xff" + `"}},"rev":1}`), err: revguard.ErrInvalidKey, msg: "not valid UTF-8"},
		{name: "key with a lone surrogate", req: body(`{"data":{"object":{"id":"a\ud800"}},"rev":1}`), err: revguard.ErrInvalidKey, msg: "surrogate"},
		{name: "key with a lone low surrogate", req: body(`{"data":{"object":{"id":"\\\udc00"}},"rev":1}`), err: revguard.ErrInvalidKey, msg: "surrogate"},
		{name: "escaped backslash before u is no escape", req: body(`{"data":{"object":{"id":"\\ud800"}},"rev":1}`), key: `\ud800`, rev: 1},
		{name: "duplicate parent", req: body(`{"data":{"object":{"id":"a"}},"data":{"object":{"id":"b"}},"rev":1}`), err: revguard.ErrInvalidKey, msg: `member "data" appears twice`},
		{name: "duplicate leaf", req: body(`{"data":{"object":{"id":"a"}},"rev":1,"rev":9}`), err: revguard.ErrInvalidRevision, msg: `member "rev" appears twice`},
		{name: "duplicate elsewhere is not our business", req: body(`{"x":1,"x":2,"data":{"object":{"id":"a"}},"rev":1}`), key: "a", rev: 1},
		{name: "empty body", req: body(``), invalid: true, msg: "not valid JSON"},
		{name: "array", req: body(`[]`), invalid: true, msg: "not a JSON object"},
		{name: "two objects", req: body(`{"data":{"object":{"id":"a"}},"rev":1}{}`), invalid: true, msg: "more than one JSON value"},
		{name: "truncated", req: body(`{"data":{"object":{"id":"a"}},"rev":1`), invalid: true, msg: "not valid JSON"},
		{name: "garbage inside a skipped member", req: body(`{"x":[1,2,},"data":{"object":{"id":"a"}},"rev":1}`), invalid: true, msg: "not valid JSON"},
		{name: "deep nesting", req: body(strings.Repeat(`{"x":`, 20000) + "1" + strings.Repeat("}", 20000)), invalid: true},
		{name: "body above the default limit", req: body(`{"pad":"` + strings.Repeat("x", middleware.DefaultMaxBody) + `"}`), err: middleware.ErrBodyTooLarge},
	})
}

// One field may be both key and revision.
func TestJSONFieldsSameField(t *testing.T) {
	key, rev, err := middleware.JSONFields("n", "n")(withBody("", `{"n":12}`)())
	require.NoError(t, err)
	assert.Equal(t, "12", key)
	assert.EqualValues(t, 12, rev)

	_, _, err = middleware.JSONFields("a", "a.b")(withBody("", `{"a":{"b":1}}`)())
	assert.ErrorIs(t, err, revguard.ErrInvalidKey)
}

func TestReadBody(t *testing.T) {
	r := withBody("", "hello")()
	b, err := middleware.ReadBody(r)
	require.NoError(t, err)
	assert.Equal(t, "hello", string(b))
	b2, err := middleware.ReadBody(r)
	require.NoError(t, err)
	assert.Equal(t, "hello", string(b2), "a second read sees the same bytes")
	all, err := io.ReadAll(r.Body)
	require.NoError(t, err)
	assert.Equal(t, "hello", string(all), "the body reads from the start")
	require.NoError(t, r.Body.Close())

	b, err = middleware.ReadBody(httptest.NewRequest(http.MethodGet, "/", nil))
	assert.NoError(t, err)
	assert.Empty(t, b)

	// A body limited upstream by http.MaxBytesReader.
	r = withBody("", "0123456789")()
	r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 4)
	_, err = middleware.ReadBody(r)
	assert.ErrorIs(t, err, middleware.ErrBodyTooLarge)

	// A body that cannot be read.
	r = withBody("", "")()
	r.Body = io.NopCloser(errReader{})
	_, err = middleware.ReadBody(r)
	var fe *middleware.FieldError
	require.ErrorAs(t, err, &fe)
	assert.Contains(t, fe.Error(), "connection reset")
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

// Through the guard, every extractor error wraps one of the guard's
// sentinels, and a too-large body still finds ErrBodyTooLarge.
func TestExtractorErrorsThroughGuard(t *testing.T) {
	g := revguard.New(newFlaky(), middleware.JSONFields("id", "rev"))
	for body, want := range map[string]error{
		`{"rev":1}`:                revguard.ErrInvalidKey,
		`{"id":"a"}`:               revguard.ErrInvalidRevision,
		`nope`:                     revguard.ErrInvalidEvent,
		strings.Repeat(" ", 2<<20): middleware.ErrBodyTooLarge,
	} {
		_, err := g.Check(t.Context(), withBody("", body)())
		assert.ErrorIs(t, err, want)
	}
}

func TestCloudEventsByTime(t *testing.T) {
	const src = "https://example.com/orders"
	ce := func(kv ...string) func() *http.Request {
		return withHeaders(append([]string{"ce-specversion", "1.0", "ce-id", "x", "ce-type", "order.paid"}, kv...)...)
	}
	structured := func(body string) func() *http.Request {
		return withBody("application/cloudevents+json", body)
	}
	runExtract(t, middleware.CloudEventsByTime(), []extractCase{
		{name: "binary: a sequence that is no counter is ignored", req: ce("ce-source", src, "ce-sequence", "orders-3-1042", "ce-time", "2001-02-03T04:05:06Z"), key: revguard.Key(src), rev: 981173106000000000},
		{name: "binary: time wins over a counter too", req: ce("ce-source", src, "ce-sequence", "7", "ce-time", "2001-02-03T04:05:06Z"), key: revguard.Key(src), rev: 981173106000000000},
		{name: "binary: no time", req: ce("ce-source", src, "ce-sequence", "7"), err: revguard.ErrInvalidRevision, msg: `header "ce-time": missing`},
		{name: "structured: sequence ignored", req: structured(`{"source":"s","sequence":"a1b2","time":"2001-02-03T04:05:06Z"}`), key: revguard.Key("s"), rev: 981173106000000000},
		{name: "structured: no time", req: structured(`{"source":"s","sequence":"7"}`), err: revguard.ErrInvalidRevision, msg: `JSON field "time": missing`},
	})
}

// WithRevisions keeps one entity's revisions of one kind: a timestamp on an
// entity that counts would make every later counter stale.
func TestWithRevisions(t *testing.T) {
	for _, c := range []struct {
		kind     middleware.RevisionKind
		ex       revguard.Extractor[*http.Request]
		req      func() *http.Request
		ok       bool
		contains string
	}{
		{middleware.Counters, middleware.Headers(keyHeader, revHeader), withHeaders(keyHeader, "k", revHeader, "7"), true, ""},
		{middleware.Counters, middleware.Headers(keyHeader, revHeader), withHeaders(keyHeader, "k", revHeader, "2020-01-01T00:00:00Z"), false, "counters only"},
		{middleware.Timestamps, middleware.Headers(keyHeader, revHeader), withHeaders(keyHeader, "k", revHeader, "2020-01-01T00:00:00Z"), true, ""},
		{middleware.Timestamps, middleware.Headers(keyHeader, revHeader), withHeaders(keyHeader, "k", revHeader, "7"), false, "RFC 3339 timestamps only"},
		{middleware.Timestamps, middleware.JSONFields("id", "rev"), withBody("application/json", `{"id":"k","rev":7}`), false, "RFC 3339 timestamps only"},
		{middleware.Counters, middleware.JSONFields("id", "rev"), withBody("application/json", `{"id":"k","rev":"2020-01-01T00:00:00Z"}`), false, "counters only"},
		{middleware.Counters, middleware.JSONFields("id", "rev"), withBody("application/json", `{"id":"k","rev":7}`), true, ""},
		{middleware.AnyRevision, middleware.JSONFields("id", "rev"), withBody("application/json", `{"id":"k","rev":"2020-01-01T00:00:00Z"}`), true, ""},
	} {
		g := revguard.New(memstore.New(), c.ex)
		ran := false
		h := middleware.HTTP(g, middleware.WithRevisions(c.kind))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { ran = true }))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, c.req())
		if c.ok {
			assert.Equal(t, http.StatusOK, w.Code, w.Body.String())
			assert.True(t, ran)
			continue
		}
		assert.Equal(t, http.StatusBadRequest, w.Code)
		assert.Contains(t, w.Body.String(), c.contains)
		assert.False(t, ran, "refused before the handler")
		_, ok, err := g.Applied(context.Background(), "k")
		require.NoError(t, err)
		assert.False(t, ok, "and before the store")
	}
	assert.Panics(t, func() { middleware.WithRevisions(9) })
}

func TestReadBodyOutsideHTTP(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(strings.Repeat("x", 32)))
	_, err := middleware.ReadBody(r, middleware.WithMaxBody(16))
	require.ErrorIs(t, err, middleware.ErrBodyTooLarge, "WithMaxBody counts outside HTTP")

	r = httptest.NewRequest(http.MethodPost, "/", strings.NewReader("small"))
	b, err := middleware.ReadBody(r, middleware.WithMaxBody(16))
	require.NoError(t, err)
	assert.Equal(t, "small", string(b))
	again, err := io.ReadAll(r.Body)
	require.NoError(t, err)
	assert.Equal(t, "small", string(again), "the body reads again from the start")
}

func TestWriteProblem(t *testing.T) {
	w := httptest.NewRecorder()
	middleware.WriteProblem(w, http.StatusUnprocessableEntity, "https://example.com/probs/mismatch", "Payload mismatch", "the body differs from the first request's")
	p := problemOf(t, w, http.StatusUnprocessableEntity)
	assert.Equal(t, "Payload mismatch", p["title"])
}
