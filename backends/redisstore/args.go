package redisstore

import (
	"strconv"

	"github.com/revguard/revguard"
)

// callText builds the keys and arguments of script calls as slices of one
// string. go-redis writes a *string argument as the string it points to, so
// a batch's hundreds of keys and arguments cost a handful of allocations
// instead of one or two each (a string, then its interface value), which
// were most of the client's allocations per event.
type callText struct {
	buf  []byte
	ends []int // where each value ends in buf
}

// newText makes room for n values of about size bytes in all.
func newText(n, size int) callText {
	return callText{buf: make([]byte, 0, size), ends: make([]int, 0, n)}
}

func (t *callText) end() { t.ends = append(t.ends, len(t.buf)) }

// name adds the Redis key of (ns, key) and returns its slot.
func (t *callText) name(s *Store, ns, key string) uint16 {
	var slot uint16
	t.buf, slot = s.appendName(t.buf, ns, key)
	t.end()
	return slot
}

func (t *callText) uint(n uint64) {
	t.buf = strconv.AppendUint(t.buf, n, 10)
	t.end()
}

// token adds tok in hex, as Token.String writes it.
func (t *callText) token(tok revguard.Token) {
	const digits = "0123456789abcdef"
	for _, c := range tok {
		t.buf = append(t.buf, digits[c>>4], digits[c&0xf])
	}
	t.end()
}

// values returns the values added, in order, sharing one string.
func (t *callText) values() []string {
	all := string(t.buf)
	out := make([]string, len(t.ends))
	start := 0
	for i, end := range t.ends {
		out[i] = all[start:end]
		start = end
	}
	return out
}

// nameSize is about the length of the Redis key of (ns, key), to size a
// callText: escaping may make it longer, and the text then grows.
func (s *Store) nameSize(ns, key string) int {
	return len(s.prefix) + len(ns) + len(key) + 3
}

// tokenSize and revSize are the most a token and a revision take in a callText.
const (
	tokenSize = 2 * len(revguard.Token{})
	revSize   = 20
)
