package middleware

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/revguard/revguard/internal/text"
)

// GitHubSignature returns middleware that passes a request on only if its
// header X-Hub-Signature-256 is "sha256=" followed by the hex HMAC-SHA256 of
// the raw body under secret (or under one of [WithExtraSecrets]), as GitHub
// and many other senders sign their webhooks. Anything else is answered 401
// with an application/problem+json body, and nothing reaches the next
// handler; a body above the limit ([WithMaxBody]) is answered 413. The next
// handler reads the body intact. Stack it in front of [HTTP], so that no
// unsigned request reaches the guard or its store:
//
//	h := middleware.GitHubSignature(secret)(middleware.HTTP(g)(app))
//
// It panics if secret is empty.
func GitHubSignature(secret []byte, opts ...Option) func(http.Handler) http.Handler {
	return hmacSignature(kindGitHub, secret, gitHubScheme, opts)
}

var gitHubScheme = compile(kindGitHub, HMACScheme{Header: "X-Hub-Signature-256", Prefix: "sha256="})

// StripeSignature returns middleware that passes a request on only if its
// header Stripe-Signature, "t=<unix seconds>,v1=<hex>[,v1=<hex>...]", holds a
// v1 that is the hex HMAC-SHA256 of t + "." + the raw body under secret (or
// under one of [WithExtraSecrets]), and t lies within the tolerance
// ([WithTolerance], default 5 minutes) of the clock in either direction, so
// that a captured delivery cannot be replayed later. Several v1 values are
// accepted, as the sender signs with each of its secrets while it rotates
// them; other schemes (v0) are ignored. Failures, body limit and stacking
// are as for [GitHubSignature].
//
// It panics if secret is empty.
func StripeSignature(secret []byte, opts ...Option) func(http.Handler) http.Handler {
	cfg := newConfig(kindStripe, opts)
	return verify(cfg, "HMAC-SHA256", "Stripe-Signature", secretsOf(cfg, secret), hmacMatches, checkStripe)
}

// A checker returns the header at fault ("" for the signature header) and
// why its request's signature does not hold, or "" for the reason if it
// does.
type checker func(v *verifier, h http.Header, body []byte) (field, why string)

// A matcher reports whether any of sigs is a signature of the content (the
// concatenated parts) under any of keys.
type matcher func(keys, sigs [][]byte, parts ...[]byte) bool

// A verifier is the middleware every signature scheme shares: it reads the
// body under the limit, lets the scheme's checker judge the request, and
// answers 401 before anything reaches next.
type verifier struct {
	cfg       *config
	keys      [][]byte
	header    string // canonical name of the signature header
	challenge string // WWW-Authenticate
	check     checker
	match     matcher
	next      http.Handler
}

// secretsOf returns secret followed by WithExtraSecrets. It panics if secret
// is empty.
func secretsOf(cfg *config, secret []byte) [][]byte {
	if len(secret) == 0 {
		panic(fmt.Sprintf("middleware.%s: empty secret", cfg.kind))
	}
	return append([][]byte{append([]byte(nil), secret...)}, cfg.secrets...)
}

func verify(cfg *config, alg, header string, keys [][]byte, match matcher, check checker) func(http.Handler) http.Handler {
	header = http.CanonicalHeaderKey(header)
	challenge := alg + ` header="` + header + `"`
	return func(next http.Handler) http.Handler {
		if next == nil {
			panic(fmt.Sprintf("middleware.%s: nil http.Handler", cfg.kind))
		}
		return &verifier{cfg: cfg, keys: keys, header: header, challenge: challenge, check: check, match: match, next: next}
	}
}

func (v *verifier) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength > v.cfg.maxBody {
		v.tooLarge(w, fmt.Sprintf("Content-Length %d is above the limit of %d bytes", r.ContentLength, v.cfg.maxBody))
		return
	}
	var data []byte
	if r.Body != nil && r.Body != http.NoBody {
		b := newBody(r.Body, v.cfg)
		r.Body = b
		var err error
		if data, err = b.readAll(r.ContentLength); err != nil {
			var fe *FieldError
			errors.As(err, &fe)
			if errors.Is(err, ErrBodyTooLarge) {
				v.tooLarge(w, "the body is "+fe.detail())
				return
			}
			writeProblem(w, http.StatusBadRequest, typeBlank, "Bad Request", fe.detail())
			return
		}
	}
	if field, why := v.check(v, r.Header, data); why != "" {
		if field == "" {
			field = v.header
		}
		// RFC 9110 wants a challenge with every 401; this one names the
		// header the sender must sign with.
		w.Header().Set("WWW-Authenticate", v.challenge)
		writeProblem(w, http.StatusUnauthorized, typeBlank, "Unauthorized", "header "+strconv.Quote(field)+": "+why)
		return
	}
	v.next.ServeHTTP(w, r)
}

func (v *verifier) tooLarge(w http.ResponseWriter, detail string) {
	w.Header().Set("Connection", "close")
	writeProblem(w, http.StatusRequestEntityTooLarge, typeBodyTooLarge, "Request body too large", detail)
}

// value returns the one value of header name, or why there is none.
func value(h http.Header, name string) (string, string) {
	switch val, ok, err := single(h, name, "", nil); {
	case err != nil:
		var fe *FieldError
		errors.As(err, &fe) // single's errors are all *FieldError
		return "", fe.Reason
	case !ok:
		return "", "missing"
	default:
		return val, ""
	}
}

// hmacMatches reports, in constant time for each candidate, whether any of
// sigs is the HMAC-SHA256 of the parts under any of the secrets.
func hmacMatches(secrets, sigs [][]byte, parts ...[]byte) bool {
	sum := make([]byte, 0, sha256.Size)
	ok := false
	for _, s := range secrets {
		mac := hmac.New(sha256.New, s)
		for _, p := range parts {
			mac.Write(p)
		}
		sum = mac.Sum(sum[:0])
		for _, sig := range sigs {
			// No early return: the time taken says nothing about which
			// secret or candidate matched.
			if hmac.Equal(sum, sig) {
				ok = true
			}
		}
	}
	return ok
}

// stale returns why a signature made at Unix time unix is outside the
// tolerance, or "". Callers check it after the signature, so that only
// holders of the secret learn about the receiver's clock.
func (v *verifier) stale(unix int64) string {
	// Seconds, since the timestamp has no finer grain; parseUnix bounded
	// unix, so the difference cannot overflow.
	d := v.cfg.now().Unix() - unix
	if d < 0 {
		d = -d
	}
	if d > int64(v.cfg.tolerance/time.Second) {
		return fmt.Sprintf("timestamp %d is %ds away from the receiver's clock, beyond the tolerance of %s", unix, d, v.cfg.tolerance)
	}
	return ""
}

// parseUnix reads a non-negative Unix time in seconds, written in decimal
// digits only.
func parseUnix(s string) (int64, bool) {
	if s == "" || len(s) > 19 || !text.AllDigits(s) {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

func checkStripe(v *verifier, h http.Header, body []byte) (string, string) {
	val, why := value(h, v.header)
	if why != "" {
		return "", why
	}
	sh, err := parseStripeSignature(val)
	if err != nil {
		return "", err.Error()
	}
	if !v.match(v.keys, sh.v1, []byte(sh.t), []byte("."), body) {
		return "", "no v1 signature matches the body"
	}
	return "", v.stale(sh.unix)
}

type stripeHeader struct {
	t    string // as sent: the signature covers these bytes
	unix int64
	v1   [][]byte
}

// parseStripeSignature reads "t=<unix>,v1=<hex>[,v1=<hex>...]". Unknown
// schemes, such as v0, are skipped, and so are v1 values that are not 64
// hex digits, as long as one well-formed v1 remains.
func parseStripeSignature(h string) (stripeHeader, error) {
	var sh stripeHeader
	hasT := false
	for item := range strings.SplitSeq(h, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			if hasT && val != sh.t {
				return stripeHeader{}, errors.New("two different timestamps t")
			}
			n, ok := parseUnix(val)
			if !ok {
				return stripeHeader{}, fmt.Errorf("timestamp t=%s is not a Unix time in seconds", text.Quote(val))
			}
			sh.t, sh.unix, hasT = val, n, true
		case "v1":
			if len(val) != 2*sha256.Size {
				continue
			}
			if sig, err := hex.DecodeString(val); err == nil {
				sh.v1 = append(sh.v1, sig)
			}
		}
	}
	if !hasT {
		return stripeHeader{}, errors.New("no timestamp t=")
	}
	if len(sh.v1) == 0 {
		return stripeHeader{}, errors.New("no v1= signature of 64 hexadecimal digits")
	}
	return sh, nil
}
