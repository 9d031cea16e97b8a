package redisstore

import "strings"

// The Redis key of an entity is the prefix, then, between braces,
// esc(namespace) ":" esc(key). esc writes every byte as it is except '%',
// '{', '}', ASCII control characters, DEL and (in the namespace only) ':',
// which it writes as '%' and two upper-case hex digits. Decoding is therefore
// unambiguous: the first ':' after '{' ends the namespace, and the first '}'
// ends the key, so the braces hold a hash tag that is the whole identity.
//
// Why not a digest of (namespace, key): an operator can then find an entity
// with redis-cli from what they know of it (HGETALL 'revguard:{orders:42}').
// The cost is key length: a key of 4096 bytes, all escaped, makes a Redis key
// of about 12 KiB.

// escaped reports whether esc rewrites c.
func escaped(c byte, namespace bool) bool {
	return c == '%' || c == '{' || c == '}' || c < 0x20 || c == 0x7f || (namespace && c == ':')
}

func appendEscaped(b []byte, s string, namespace bool) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		if c := s[i]; escaped(c, namespace) {
			b = append(b, '%', hex[c>>4], hex[c&0xf])
		} else {
			b = append(b, c)
		}
	}
	return b
}

// unescape is the inverse of appendEscaped: it returns the string that
// appendEscaped wrote as s, and false for anything it could not have written
// (a byte it escapes left bare, an escape of a byte it leaves bare, lower-case
// or missing hex digits), so that one string has one encoding and decoding a
// name and encoding it again gives the name back.
func unescape(s string, namespace bool) (string, bool) {
	if strings.IndexByte(s, '%') < 0 {
		for i := 0; i < len(s); i++ {
			if escaped(s[i], namespace) {
				return "", false
			}
		}
		return s, true
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' {
			if i+2 >= len(s) {
				return "", false
			}
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			c = hi<<4 | lo
			if !ok1 || !ok2 || !escaped(c, namespace) {
				return "", false
			}
			i += 2
		} else if escaped(c, namespace) {
			return "", false
		}
		b = append(b, c)
	}
	return string(b), true
}

// unhex reads one of the upper-case hex digits appendEscaped writes.
func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// parseName returns the namespace and key whose Redis key is name; ok is
// false for a name the store does not write.
func (s *Store) parseName(name string) (ns, key string, ok bool) {
	rest, ok := strings.CutPrefix(name, s.prefix+"{")
	if !ok {
		return "", "", false
	}
	// The namespace escapes ':' and neither part holds a bare '}', so the
	// first ':' ends the namespace and the last byte must close the tag.
	escNS, escKey, ok := strings.Cut(rest, ":")
	if !ok || !strings.HasSuffix(escKey, "}") {
		return "", "", false
	}
	if ns, ok = unescape(escNS, true); !ok {
		return "", "", false
	}
	if key, ok = unescape(escKey[:len(escKey)-1], false); !ok {
		return "", "", false
	}
	return ns, key, true
}

// name returns the Redis key of (ns, key) and the slot Redis Cluster keeps
// it in.
func (s *Store) name(ns, key string) (string, uint16) {
	b, slot := s.appendName(make([]byte, 0, len(s.prefix)+len(ns)+len(key)+3), ns, key)
	return string(b), slot
}

// appendName appends the Redis key of (ns, key) to b and returns it with
// the slot Redis Cluster keeps it in.
func (s *Store) appendName(b []byte, ns, key string) ([]byte, uint16) {
	b = append(b, s.prefix...)
	b = append(b, '{')
	tag := len(b)
	b = appendEscaped(b, ns, true)
	b = append(b, ':')
	b = appendEscaped(b, key, false)
	slot := crc16(b[tag:]) % slots
	return append(b, '}'), slot
}

// slots is the number of hash slots of Redis Cluster.
const slots = 16384

var crcTable = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x1021
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()

// crc16 is CRC-16/XMODEM, the checksum Redis Cluster maps keys to slots with.
func crc16(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc = crc<<8 ^ crcTable[byte(crc>>8)^c]
	}
	return crc
}
