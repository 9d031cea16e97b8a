package middleware

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
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

// parseGitHubSignature reads the one signature in GitHubSignature's header.
func parseGitHubSignature(h string) ([]byte, error) {
	sigs, err := gitHubScheme.parse(h)
	if err != nil {
		return nil, err
	}
	return sigs[0], nil
}

// serveSigned runs a signature middleware on a request with the given
// headers (name, value pairs) and reports whether it passed the request on.
// Any answer but a pass must be a problem 401, 400 or 413.
func serveSigned(t *testing.T, mw func(http.Handler) http.Handler, body []byte, headers ...string) bool {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	for i := 0; i < len(headers); i += 2 {
		r.Header[http.CanonicalHeaderKey(headers[i])] = []string{headers[i+1]}
	}
	passed := false
	w := httptest.NewRecorder()
	mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		passed = true
		checkBodyIntact(t, r, body)
	})).ServeHTTP(w, r)
	if !passed && w.Code != http.StatusUnauthorized && w.Code != http.StatusBadRequest && w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d: %s", w.Code, w.Body.Bytes())
	}
	if !passed && w.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("status %d without a problem body", w.Code)
	}
	return passed
}

// listed reports whether the separated items of h hold want.
func listed(h, sep, want string) bool {
	for item := range strings.SplitSeq(h, sep) {
		if strings.TrimSpace(item) == want {
			return true
		}
	}
	return false
}

func fuzzMAC(key []byte, content string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(content))
	return m.Sum(nil)
}

// The verifiers below never accept a signature they did not compute: a
// request passes only if its header holds the signature of its content.

func FuzzStandardWebhooks(f *testing.F) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	f.Add("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", []byte(`{"test": 2432232314}`))
	f.Add("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", "v2,x  v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1,", []byte(`{"test": 2432232314}`))
	f.Add("", "01614265330", "v1,,v1", []byte(nil))
	f.Add("a.b", "-1", "v1a,AAAA", []byte("."))
	key, _ := base64.StdEncoding.DecodeString(secret[6:])
	mw := StandardWebhooks(secret, WithClock(func() time.Time { return time.Unix(1614265330, 0) }))
	f.Fuzz(func(t *testing.T, id, ts, sigs string, body []byte) {
		if !serveSigned(t, mw, body, "webhook-id", id, "webhook-timestamp", ts, "webhook-signature", sigs) {
			return
		}
		want := "v1," + base64.StdEncoding.EncodeToString(fuzzMAC(key, id+"."+ts+"."+string(body)))
		if !listed(sigs, " ", want) {
			t.Fatalf("accepted %q, which does not hold %q", sigs, want)
		}
	})
}

func FuzzStandardWebhooksPublicKey(f *testing.F) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	pub := "whpk_" + base64.StdEncoding.EncodeToString(priv.Public().(ed25519.PublicKey))
	signed := func(id, ts string, body []byte) string {
		return "v1a," + base64.StdEncoding.EncodeToString(ed25519.Sign(priv, []byte(id+"."+ts+"."+string(body))))
	}
	f.Add("msg_1", "1614265330", signed("msg_1", "1614265330", []byte("{}")), []byte("{}"))
	f.Add("msg_1", "1614265330", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= "+signed("msg_1", "1614265330", nil), []byte(nil))
	f.Add("msg_1", "1614265330", "v1a,"+strings.Repeat("A", 86)+"==", []byte("{}"))
	mw := StandardWebhooksPublicKey(pub, WithClock(func() time.Time { return time.Unix(1614265330, 0) }))
	f.Fuzz(func(t *testing.T, id, ts, sigs string, body []byte) {
		if !serveSigned(t, mw, body, "webhook-id", id, "webhook-timestamp", ts, "webhook-signature", sigs) {
			return
		}
		// Ed25519 signing is deterministic, and no one else can sign.
		if want := signed(id, ts, body); !listed(sigs, " ", want) {
			t.Fatalf("accepted %q, which does not hold %q", sigs, want)
		}
	})
}

func FuzzSlackSignature(f *testing.F) {
	const secret = "8f742231b10e8888abcd99yyyzzz85a5"
	f.Add("1531420618", "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503", []byte("token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"))
	f.Add("1531420618", "v0="+strings.Repeat("A", 64), []byte(nil))
	f.Add("", "v0=", []byte("x"))
	mw := SlackSignature([]byte(secret), WithClock(func() time.Time { return time.Unix(1531420618, 0) }))
	f.Fuzz(func(t *testing.T, ts, sig string, body []byte) {
		if !serveSigned(t, mw, body, "X-Slack-Request-Timestamp", ts, "X-Slack-Signature", sig) {
			return
		}
		want := fuzzMAC([]byte(secret), "v0:"+ts+":"+string(body))
		got, err := hex.DecodeString(strings.TrimPrefix(sig, "v0="))
		if err != nil || !strings.HasPrefix(sig, "v0=") || !bytes.Equal(got, want) {
			t.Fatalf("accepted %q, want v0=%x", sig, want)
		}
	})
}

func FuzzShopifySignature(f *testing.F) {
	const secret = "hush"
	f.Add("fp5HwmAHEVGQQwJU1KRpk57Ts2YHF6/TLOCczCtB5bs=", []byte(`{"id":820982911946154508,"email":"jon@doe.ca"}`))
	f.Add("fp5HwmAHEVGQQwJU1KRpk57Ts2YHF6/TLOCczCtB5bs", []byte(nil))
	f.Add("====", []byte("x"))
	mw := ShopifySignature([]byte(secret))
	f.Fuzz(func(t *testing.T, sig string, body []byte) {
		if !serveSigned(t, mw, body, "X-Shopify-Hmac-Sha256", sig) {
			return
		}
		if want := base64.StdEncoding.EncodeToString(fuzzMAC([]byte(secret), string(body))); sig != want {
			t.Fatalf("accepted %q, want %q", sig, want)
		}
	})
}
