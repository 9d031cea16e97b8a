package middleware

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
	"github.com/revguard/revguard/internal/text"
)

// The fuzz targets check that no input panics, that every error is a
// FieldError wrapping one of the sentinels (or none, for ErrInvalidEvent),
// that an accepted key is valid, and that the body reaches the next reader
// intact. Seeds live in testdata/fuzz.

var fuzzNow = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

func checkExtracted(t *testing.T, key string, rev revguard.Revision, err error) {
	t.Helper()
	if err == nil {
		if kerr := revguard.CheckKey(key); kerr != nil {
			t.Fatalf("accepted an invalid key: %v", kerr)
		}
		return
	}
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("error %q (%T) is not a FieldError", err, err)
	}
	if fe.Err != nil && !errors.Is(err, revguard.ErrInvalidKey) && !errors.Is(err, revguard.ErrInvalidRevision) && !errors.Is(err, ErrBodyTooLarge) {
		t.Fatalf("error %q wraps no sentinel", err)
	}
	if fe.Reason == "" {
		t.Fatalf("error %q gives no reason", err)
	}
}

func checkBodyIntact(t *testing.T, r *http.Request, want []byte) {
	t.Helper()
	got, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatalf("reading the body after the extractor: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("body after the extractor is %q, want %q", got, want)
	}
}

// fuzzRequest carries the middleware's settings, as HTTP would.
func fuzzRequest(body []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	cfg := newConfig(kindHTTP, []Option{WithClock(func() time.Time { return fuzzNow }), WithMaxBody(1 << 12)})
	r.Body = newBody(r.Body, cfg)
	return r
}

func FuzzHeaders(f *testing.F) {
	f.Add("order-1", "42", "")
	f.Add("order-1", "2026-11-23T09:04:59.999999999Z", "")
	f.Add("", "18446744073709551616", "")
	f.Add("k\xff", "1", "2")
	f.Add("k", "1", "1")
	ex := Headers("Event-Key", "Event-Revision")
	f.Fuzz(func(t *testing.T, key, rev, rev2 string) {
		r := fuzzRequest(nil)
		r.Header["Event-Key"] = []string{key}
		r.Header["Event-Revision"] = []string{rev}
		if rev2 != "" {
			r.Header["Event-Revision"] = append(r.Header["Event-Revision"], rev2)
		}
		k, got, err := ex(r)
		checkExtracted(t, k, got, err)
		if err != nil {
			return
		}
		if rev2 != "" && rev2 != rev {
			t.Fatalf("accepted conflicting revisions %q and %q", rev, rev2)
		}
		want, perr := revguard.ParseRevision(rev)
		if perr != nil || want != got {
			t.Fatalf("revision %q read as %d; ParseRevision says %d, %v", rev, got, want, perr)
		}
		if !text.AllDigits(rev) && uint64(got) > uint64(fuzzNow.UnixNano())+uint64(DefaultMaxFutureSkew) {
			t.Fatalf("timestamp %q beyond the skew accepted", rev)
		}
	})
}

func FuzzJSONFields(f *testing.F) {
	f.Add([]byte(`{"data":{"object":{"id":"evt_1"}},"rev":5}`), "data.object.id", "rev")
	f.Add([]byte(`{"id":42,"rev":"2026-11-23T09:00:00Z"}`), "id", "rev")
	f.Add([]byte(`{"a":{"a":{"a":1}},"a":2}`), "a.a.a", "a")
	f.Add([]byte(`{"id":"\ud800","rev":18446744073709551615}`), "id", "rev")
	f.Add([]byte(`{"id":"x","rev":1e400}`), "id", "rev")
	f.Add([]byte(`[{"id":"x"}]`), "id", "rev")
	f.Fuzz(func(t *testing.T, body []byte, keyPath, revPath string) {
		if !validPath(keyPath) || !validPath(revPath) {
			t.Skip()
		}
		r := fuzzRequest(body)
		key, rev, err := JSONFields(keyPath, revPath)(r)
		checkExtracted(t, key, rev, err)
		if errors.Is(err, ErrBodyTooLarge) {
			return
		}
		checkBodyIntact(t, r, body)
		if err != nil {
			return
		}
		// encoding/json must read the same values.
		var doc any
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&doc); err != nil {
			t.Fatalf("accepted a body encoding/json refuses: %v", err)
		}
		switch v := at(doc, keyPath).(type) {
		case string:
			if v != key {
				t.Fatalf("key %q, encoding/json reads %q", key, v)
			}
		case json.Number:
			if string(v) != key {
				t.Fatalf("key %q, encoding/json reads %s", key, v)
			}
		default:
			t.Fatalf("key %q, encoding/json reads %#v", key, v)
		}
		switch v := at(doc, revPath).(type) {
		case string:
			if want, err := revguard.ParseRevision(v); err != nil || want != rev {
				t.Fatalf("revision %d from %q; ParseRevision says %d, %v", rev, v, want, err)
			}
		case json.Number:
			if want, err := strconv.ParseUint(string(v), 10, 64); err != nil || want != uint64(rev) {
				t.Fatalf("revision %d from %s; ParseUint says %d, %v", rev, v, want, err)
			}
		default:
			t.Fatalf("revision %d, encoding/json reads %#v", rev, v)
		}
	})
}

func validPath(p string) bool {
	if len(p) > 64 {
		return false
	}
	for _, s := range strings.Split(p, ".") {
		if s == "" {
			return false
		}
	}
	return true
}

func at(doc any, path string) any {
	for _, name := range strings.Split(path, ".") {
		m, ok := doc.(map[string]any)
		if !ok {
			return nil
		}
		doc = m[name]
	}
	return doc
}

func FuzzCloudEvents(f *testing.F) {
	f.Add("", "https://example.com/orders", "42", "7", "", []byte("data"))
	f.Add("text/plain", "s", "", "", "2026-11-23T09:00:00Z", []byte(nil))
	f.Add("", "a%zz", "caf%C3%A9", "", "2400-01-01T00:00:00Z", []byte(nil))
	f.Add("application/cloudevents+json", "", "", "", "", []byte(`{"source":"s","subject":"x","sequence":"7"}`))
	f.Add("Application/CloudEvents+JSON; charset=utf-8", "", "", "", "", []byte(`{"source":"s","time":"2026-11-23T09:00:00Z","sequence":null}`))
	f.Add("application/cloudevents-batch+json", "", "", "", "", []byte(`[]`))
	ex := CloudEvents()
	f.Fuzz(func(t *testing.T, contentType, source, subject, seq, tm string, body []byte) {
		r := fuzzRequest(body)
		for name, v := range map[string]string{"Content-Type": contentType, "Ce-Source": source, "Ce-Subject": subject, "Ce-Sequence": seq, "Ce-Time": tm} {
			if v != "" {
				r.Header[name] = []string{v}
			}
		}
		key, rev, err := ex(r)
		checkExtracted(t, key, rev, err)
		if !errors.Is(err, ErrBodyTooLarge) {
			checkBodyIntact(t, r, body)
		}
	})
}

// FuzzHTTP sends whatever the fuzzer makes through the whole middleware on
// memstore: the answer is the inner handler's, a drop, or a 400, 409 or
// 413, never a 5xx of the middleware's own.
func FuzzHTTP(f *testing.F) {
	f.Add("application/cloudevents+json", "", "", []byte(`{"source":"s","sequence":"1"}`))
	f.Add("", "s", "1", []byte("payload"))
	f.Add("", "s\xff", "1", []byte(nil))
	f.Add("", "s", "2400-01-01T00:00:00Z", []byte(nil))
	g := revguard.New(memstore.New(), CloudEvents())
	h := HTTP(g, WithMaxBody(1<<12), WithClock(func() time.Time { return fuzzNow }))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(w, r.Body)
	}))
	f.Fuzz(func(t *testing.T, contentType, source, seq string, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		for name, v := range map[string]string{"Content-Type": contentType, "Ce-Source": source, "Ce-Sequence": seq} {
			if v != "" {
				r.Header[name] = []string{v}
			}
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch w.Code {
		case http.StatusOK:
			if w.Header().Get(OutcomeHeader) == "" && !bytes.Equal(w.Body.Bytes(), body) {
				t.Fatalf("the inner handler read %q, want %q", w.Body.Bytes(), body)
			}
		case http.StatusBadRequest, http.StatusConflict, http.StatusRequestEntityTooLarge:
			if w.Header().Get("Content-Type") != "application/problem+json" || !json.Valid(w.Body.Bytes()) {
				t.Fatalf("%d without a problem body: %q", w.Code, w.Body.Bytes())
			}
		default:
			t.Fatalf("status %d: %s", w.Code, w.Body.Bytes())
		}
	})
}

func FuzzStripeSignatureHeader(f *testing.F) {
	f.Add("t=1492774577,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd,v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39")
	f.Add("t=1,v1=zz,v1=" + strings.Repeat("ab", 32))
	f.Add("t=1,t=2")
	f.Add("t=-1")
	f.Add(",,=,t=,v1=")
	f.Fuzz(func(t *testing.T, h string) {
		sh, err := parseStripeSignature(h)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if !text.AllDigits(sh.t) || sh.t == "" || strconv.FormatInt(sh.unix, 10) != strings.TrimLeft(sh.t, "0") && sh.unix != 0 {
			t.Fatalf("timestamp %q read as %d", sh.t, sh.unix)
		}
		if !strings.Contains(h, "t="+sh.t) {
			t.Fatalf("timestamp %q is not in %q", sh.t, h)
		}
		if len(sh.v1) == 0 {
			t.Fatal("accepted without a v1")
		}
		for _, s := range sh.v1 {
			if len(s) != sha256.Size {
				t.Fatalf("v1 of %d bytes", len(s))
			}
		}
	})
}

func FuzzGitHubSignatureHeader(f *testing.F) {
	f.Add("sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
	f.Add("sha1=01234")
	f.Add("sha256=" + strings.Repeat("Z", 64))
	f.Fuzz(func(t *testing.T, h string) {
		sig, err := parseGitHubSignature(h)
		if err != nil {
			return
		}
		if len(sig) != sha256.Size || !strings.HasPrefix(h, "sha256=") {
			t.Fatalf("accepted %q as %x", h, sig)
		}
	})
}
