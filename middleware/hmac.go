package middleware

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// An HMACScheme says where a sender puts its HMAC-SHA256 signature and what
// it signs, for [HMACSignature]. Header is required; the zero value of every
// other field is the common case, so that
//
//	middleware.HMACScheme{Header: "X-Signature"}
//
// reads a bare hex HMAC-SHA256 of the body.
type HMACScheme struct {
	// Header holds the signature: Prefix followed by the encoded MAC.
	Header string
	// Prefix comes before each encoded MAC, such as "sha256=" or "v1,".
	// The default is none.
	Prefix string
	// Separator, if not empty, splits Header into several signatures, any
	// one of which may verify, as senders send one per secret while they
	// rotate them. Values without Prefix, or not a well-formed MAC, are
	// then skipped, as long as one well-formed signature remains. The
	// default is one signature.
	Separator string
	// Encoding is how the MAC is written. The default is Hex.
	Encoding Encoding
	// Signed is the signed content: literal text with {body} for the raw
	// body and {Header-Name} for the value of a request header, such as
	// "v0:{X-Slack-Request-Timestamp}:{body}". A request without one of
	// the named headers is refused. The default is "{body}".
	Signed string
	// Timestamp names the header holding the Unix time, in seconds, of the
	// signature, which must lie within WithTolerance of the clock, so that
	// a captured delivery cannot be replayed later. Signed must include it,
	// or the time is not signed. The default is none: no replay protection.
	Timestamp string
}

// An Encoding is how an [HMACScheme] writes the MAC in its header.
type Encoding uint8

const (
	// Hex is hexadecimal, lower or upper case.
	Hex Encoding = iota
	// Base64 is standard base64 with padding (RFC 4648, section 4).
	Base64
)

// HMACSignature returns middleware that passes a request on only if it
// carries, as scheme says, an HMAC-SHA256 signature under secret (or under
// one of [WithExtraSecrets]), and its timestamp, if scheme has one, lies within
// [WithTolerance] (5 minutes by default) of the clock in either direction.
// Anything else is answered 401 with an application/problem+json body, and
// nothing reaches the next handler; a body above the limit ([WithMaxBody]) is
// answered 413. The next handler reads the body intact. Stack it in front of
// [HTTP], so that no unsigned request reaches the guard or its store.
// [GitHubSignature], [SlackSignature], [ShopifySignature] and
// [StandardWebhooks] are schemes of it.
//
// It panics if secret is empty or scheme is not valid: no Header, a
// malformed header name, unbalanced braces in Signed, or a Timestamp that
// Signed does not include.
func HMACSignature(secret []byte, scheme HMACScheme, opts ...Option) func(http.Handler) http.Handler {
	return hmacSignature(kindHMAC, secret, compile(kindHMAC, scheme), opts)
}

func hmacSignature(k kind, secret []byte, s *scheme, opts []Option) func(http.Handler) http.Handler {
	cfg := newConfig(k, opts)
	return verify(cfg, "HMAC-SHA256", s.header, secretsOf(cfg, secret), hmacMatches, s.check)
}

// A scheme is an HMACScheme ready to check requests, also used for
// signatures other than HMAC-SHA256.
type scheme struct {
	header, prefix, sep string
	enc                 Encoding
	size                int // bytes of a signature
	signed              []part
	timestamp           string
}

// A part of the signed content: literal bytes, a header's value, or the
// body (neither).
type part struct {
	lit    []byte
	header string
}

func compile(k kind, hs HMACScheme) *scheme {
	checkHeaderName(k.String(), hs.Header)
	if hs.Encoding > Base64 {
		panic(fmt.Sprintf("middleware.%s: unknown Encoding %d", k, hs.Encoding))
	}
	s := &scheme{header: http.CanonicalHeaderKey(hs.Header), prefix: hs.Prefix, sep: hs.Separator, enc: hs.Encoding, size: sha256.Size}
	tmpl := hs.Signed
	if tmpl == "" {
		tmpl = "{body}"
	}
	signsTime := false
	for tmpl != "" {
		open := strings.IndexAny(tmpl, "{}")
		if open < 0 {
			s.signed = append(s.signed, part{lit: []byte(tmpl)})
			break
		}
		if open > 0 {
			s.signed = append(s.signed, part{lit: []byte(tmpl[:open])})
		}
		end := strings.IndexByte(tmpl[open:], '}')
		if tmpl[open] != '{' || end < 0 {
			panic(fmt.Sprintf("middleware.%s: unbalanced braces in Signed %q", k, hs.Signed))
		}
		name := tmpl[open+1 : open+end]
		tmpl = tmpl[open+end+1:]
		if name == "body" {
			s.signed = append(s.signed, part{})
			continue
		}
		checkHeaderName(k.String(), name)
		name = http.CanonicalHeaderKey(name)
		s.signed = append(s.signed, part{header: name})
		signsTime = signsTime || hs.Timestamp != "" && name == http.CanonicalHeaderKey(hs.Timestamp)
	}
	if hs.Timestamp != "" {
		checkHeaderName(k.String(), hs.Timestamp)
		if !signsTime {
			panic(fmt.Sprintf("middleware.%s: Signed %q does not include the Timestamp header {%s}", k, hs.Signed, hs.Timestamp))
		}
		s.timestamp = http.CanonicalHeaderKey(hs.Timestamp)
	}
	return s
}

// check is the checker of every scheme; v.match says what a valid
// signature is.
func (s *scheme) check(v *verifier, h http.Header, body []byte) (string, string) {
	val, why := value(h, s.header)
	if why != "" {
		return "", why
	}
	sigs, err := s.parse(val)
	if err != nil {
		return "", err.Error()
	}
	var unix int64
	if s.timestamp != "" {
		ts, why := value(h, s.timestamp)
		if why != "" {
			return s.timestamp, why
		}
		var ok bool
		if unix, ok = parseUnix(ts); !ok {
			return s.timestamp, "not a Unix time in seconds"
		}
	}
	content := make([][]byte, len(s.signed))
	for i, p := range s.signed {
		switch {
		case p.lit != nil:
			content[i] = p.lit
		case p.header != "":
			val, why := value(h, p.header)
			if why != "" {
				return p.header, why
			}
			content[i] = []byte(val)
		default:
			content[i] = body
		}
	}
	if !v.match(v.keys, sigs, content...) {
		what := "the signed content"
		if len(s.signed) == 1 && s.signed[0].lit == nil && s.signed[0].header == "" {
			what = "the body"
		}
		if s.sep == "" {
			return "", "the signature does not match " + what
		}
		return "", "no signature matches " + what
	}
	if s.timestamp == "" {
		return "", ""
	}
	return s.timestamp, v.stale(unix)
}

// parse returns the signatures in the header's value h.
func (s *scheme) parse(h string) ([][]byte, error) {
	if s.sep == "" {
		sig, err := s.decode(h)
		if err != nil {
			return nil, err
		}
		return [][]byte{sig}, nil
	}
	var sigs [][]byte
	for item := range strings.SplitSeq(h, s.sep) {
		if sig, err := s.decode(strings.TrimSpace(item)); err == nil {
			sigs = append(sigs, sig)
		}
	}
	if len(sigs) == 0 {
		return nil, fmt.Errorf("no signature %q followed by %s", s.prefix, s.form())
	}
	return sigs, nil
}

// decode reads one signature: the prefix and the encoded MAC.
func (s *scheme) decode(item string) ([]byte, error) {
	enc, ok := strings.CutPrefix(item, s.prefix)
	if !ok {
		return nil, fmt.Errorf("want %q and %s", s.prefix, s.form())
	}
	if len(enc) != encodings[s.enc].len(s.size) {
		after := ""
		if s.prefix != "" {
			after = " after " + s.prefix
		}
		return nil, fmt.Errorf("want %s%s, got %d characters", s.form(), after, len(enc))
	}
	sig, err := encodings[s.enc].decode(enc)
	if err != nil {
		return nil, errors.New("the signature is not " + encodings[s.enc].name)
	}
	return sig, nil
}

// form describes an encoded signature, as in "64 hexadecimal digits".
func (s *scheme) form() string {
	e := encodings[s.enc]
	return fmt.Sprintf("%d %s %s", e.len(s.size), e.name, e.unit)
}

var encodings = [...]struct {
	name, unit string
	len        func(int) int
	decode     func(string) ([]byte, error)
}{
	Hex:    {"hexadecimal", "digits", hex.EncodedLen, hex.DecodeString},
	Base64: {"base64", "characters", base64.StdEncoding.EncodedLen, base64.StdEncoding.Strict().DecodeString},
}
