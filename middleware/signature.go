package middleware

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/revguard/revguard/internal/text"
)

// GitHubSignature returns middleware that passes a request on only if its
// header X-Hub-Signature-256 is "sha256=" followed by the hex HMAC-SHA256 of
// the raw body under secret (or under one of WithExtraSecrets), as GitHub
// and many other senders sign their webhooks. Anything else is answered 401
// with an application/problem+json body, and nothing reaches the next
// handler; a body above the limit (WithMaxBody) is answered 413. The next
// handler reads the body intact. Stack it in front of HTTP, so that no
// unsigned request reaches the guard or its store:
//
//	h := middleware.GitHubSignature(secret)(middleware.HTTP(g)(app))
//
// It panics if secret is empty.
func GitHubSignature(secret []byte, opts ...Option) func(http.Handler) http.Handler {
	return signature(kindGitHub, secret, opts, "X-Hub-Signature-256", checkGitHub)
}

// StripeSignature returns middleware that passes a request on only if its
// header Stripe-Signature, "t=<unix seconds>,v1=<hex>[,v1=<hex>...]", holds a
// v1 that is the hex HMAC-SHA256 of t + "." + the raw body under secret (or
// under one of WithExtraSecrets), and t lies within the tolerance
// (WithTolerance, default 5 minutes) of the clock in either direction, so
// that a captured delivery cannot be replayed later. Several v1 values are
// accepted, as the sender signs with each of its secrets while it rotates
// them; other schemes (v0) are ignored. Failures, body limit and stacking
// are as for GitHubSignature.
//
// It panics if secret is empty.
func StripeSignature(secret []byte, opts ...Option) func(http.Handler) http.Handler {
	return signature(kindStripe, secret, opts, "Stripe-Signature", checkStripe)
}

// A checker returns why the signature in header does not hold, or "".
type checker func(v *verifier, header string, body []byte) string

type verifier struct {
	cfg     *config
	secrets [][]byte
	header  string // canonical
	check   checker
	next    http.Handler
}

func signature(k kind, secret []byte, opts []Option, header string, check checker) func(http.Handler) http.Handler {
	if len(secret) == 0 {
		panic(fmt.Sprintf("middleware.%s: empty secret", k))
	}
	cfg := newConfig(k, opts)
	secrets := append([][]byte{append([]byte(nil), secret...)}, cfg.secrets...)
	return func(next http.Handler) http.Handler {
		if next == nil {
			panic(fmt.Sprintf("middleware.%s: nil http.Handler", k))
		}
		return &verifier{cfg: cfg, secrets: secrets, header: header, check: check, next: next}
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
	var why string
	switch val, ok, err := single(r.Header, v.header, "", nil); {
	case err != nil:
		why = err.(*FieldError).Reason
	case !ok:
		why = "missing"
	default:
		why = v.check(v, val, data)
	}
	if why != "" {
		// RFC 9110 wants a challenge with every 401; this one names the
		// header the sender must sign with.
		w.Header().Set("WWW-Authenticate", `HMAC-SHA256 header="`+v.header+`"`)
		writeProblem(w, http.StatusUnauthorized, typeBlank, "Unauthorized", "header "+strconv.Quote(v.header)+": "+why)
		return
	}
	v.next.ServeHTTP(w, r)
}

func (v *verifier) tooLarge(w http.ResponseWriter, detail string) {
	w.Header().Set("Connection", "close")
	writeProblem(w, http.StatusRequestEntityTooLarge, typeBodyTooLarge, "Request body too large", detail)
}

// matches reports, in constant time for each candidate, whether any of sigs
// is the HMAC-SHA256 of the parts under any of the secrets.
func (v *verifier) matches(sigs [][]byte, parts ...[]byte) bool {
	var mac hash.Hash
	sum := make([]byte, 0, sha256.Size)
	ok := false
	for _, s := range v.secrets {
		mac = hmac.New(sha256.New, s)
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

func checkGitHub(v *verifier, header string, body []byte) string {
	sig, err := parseGitHubSignature(header)
	if err != nil {
		return err.Error()
	}
	if !v.matches([][]byte{sig}, body) {
		return "the signature does not match the body"
	}
	return ""
}

// parseGitHubSignature reads "sha256=<64 hex digits>".
func parseGitHubSignature(h string) ([]byte, error) {
	hexSig, ok := strings.CutPrefix(h, "sha256=")
	if !ok {
		return nil, errors.New(`want "sha256=" and 64 hexadecimal digits`)
	}
	if len(hexSig) != 2*sha256.Size {
		return nil, fmt.Errorf("want 64 hexadecimal digits after sha256=, got %d characters", len(hexSig))
	}
	sig, err := hex.DecodeString(hexSig)
	if err != nil {
		return nil, errors.New("the signature is not hexadecimal")
	}
	return sig, nil
}

func checkStripe(v *verifier, header string, body []byte) string {
	sh, err := parseStripeSignature(header)
	if err != nil {
		return err.Error()
	}
	if !v.matches(sh.v1, []byte(sh.t), []byte("."), body) {
		return "no v1 signature matches the body"
	}
	// Checked after the signature, so that only holders of the secret learn
	// about the receiver's clock.
	// Seconds, since t has no finer grain; ParseInt bounded t, so the
	// difference cannot overflow.
	d := v.cfg.now().Unix() - sh.unix
	if d < 0 {
		d = -d
	}
	if d > int64(v.cfg.tolerance/time.Second) {
		return fmt.Sprintf("timestamp %d is %ds away from the receiver's clock, beyond the tolerance of %s", sh.unix, d, v.cfg.tolerance)
	}
	return ""
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
			if val == "" || len(val) > 19 || !text.AllDigits(val) {
				return stripeHeader{}, fmt.Errorf("timestamp t=%s is not a Unix time in seconds", text.Quote(val))
			}
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
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
