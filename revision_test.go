package revguard_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
)

func TestParseRevision(t *testing.T) {
	ts := time.Date(2026, 11, 23, 9, 0, 0, 500, time.UTC)
	want, err := revguard.Timestamp(ts)
	require.NoError(t, err)
	for _, c := range []struct {
		in   string
		want revguard.Revision
	}{
		{"0", 0},
		{"42", 42},
		{"007", 7},
		{"9007199254740993", 1<<53 + 1},
		{"18446744073709551615", math.MaxUint64},
		{"2026-11-23T09:00:00.0000005Z", want},
		{"2026-11-23T10:00:00.0000005+01:00", want},
		{"1970-01-01T00:00:00Z", 0},
	} {
		got, err := revguard.ParseRevision(c.in)
		if assert.NoError(t, err, c.in) {
			assert.Equal(t, c.want, got, c.in)
			if !strings.Contains(c.in, "T") {
				assert.Equal(t, strings.TrimLeft(c.in, "0")+map[bool]string{true: "0"}[strings.Trim(c.in, "0") == ""], got.String())
			}
		}
	}
	for _, in := range []string{"", " 1", "1 ", "+1", "-1", "1.5", "1e9", "0x10", "1_000",
		"18446744073709551616", "99999999999999999999999", "abc", "2026-11-23", "2026-11-23 09:00:00Z",
		"1969-12-31T23:59:59Z", "2026-13-01T00:00:00Z", "١٢٣", strings.Repeat("9", 5000)} {
		_, err := revguard.ParseRevision(in)
		require.Error(t, err, "%q", in)
		assert.ErrorIs(t, err, revguard.ErrInvalidRevision, "%q", in)
		assert.Less(t, len(err.Error()), 300, "the message quotes a bounded part of the input")
	}
}

func TestTimestamp(t *testing.T) {
	r, err := revguard.Timestamp(time.Unix(1, 2))
	require.NoError(t, err)
	assert.Equal(t, revguard.Revision(1_000_000_002), r)
	_, err = revguard.Timestamp(time.Unix(-1, 0))
	assert.ErrorIs(t, err, revguard.ErrInvalidRevision)
	// Beyond int64 nanoseconds (2262) uint64 still holds the time, up to 2554.
	r, err = revguard.Timestamp(time.Date(2500, 1, 1, 0, 0, 0, 0, time.UTC))
	require.NoError(t, err)
	assert.Greater(t, uint64(r), uint64(math.MaxInt64))
	_, err = revguard.Timestamp(time.Date(2600, 1, 1, 0, 0, 0, 0, time.UTC))
	assert.ErrorIs(t, err, revguard.ErrInvalidRevision)
}

// A revision 292 years or more ahead of the clock is refused with the
// distance capped, not wrapped round to a negative Duration.
func TestMaxFutureSkewFarAhead(t *testing.T) {
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	g := revguard.New(memstore.New(), func(r revguard.Revision) (string, revguard.Revision, error) { return "k", r, nil },
		revguard.WithMaxFutureSkew(time.Minute), revguard.WithClock(func() time.Time { return now }))
	_, err := g.Check(context.Background(), revguard.Revision(math.MaxUint64))
	require.ErrorIs(t, err, revguard.ErrInvalidRevision)
	assert.Contains(t, err.Error(), " is 2562047h47m16.854775807s ahead of the clock")
}

func TestOutcomeString(t *testing.T) {
	assert.Equal(t, "applied", revguard.Applied.String())
	assert.Equal(t, "duplicate", revguard.Duplicate.String())
	assert.Equal(t, "stale", revguard.Stale.String())
	assert.Equal(t, "Outcome(0)", revguard.Outcome(0).String())
}

func TestKey(t *testing.T) {
	assert.Equal(t, "order:42", revguard.Key("order", "42"))
	assert.NotEqual(t, revguard.Key("a:b", "c"), revguard.Key("a", "b:c"))
	assert.NotEqual(t, revguard.Key(`a\`, "b"), revguard.Key("a", `\b`))
	assert.NotEqual(t, revguard.Key(), revguard.Key(""))
	assert.NotEqual(t, revguard.Key(""), revguard.Key("", ""))
	assert.NotEqual(t, revguard.Key(`\_`), revguard.Key(""))

	long := strings.Repeat("x", 300)
	k1, k2 := revguard.Key(long, "1"), revguard.Key(long, "2")
	assert.LessOrEqual(t, len(k1), 256)
	assert.NotEqual(t, k1, k2)
	assert.True(t, strings.HasPrefix(k1, "xxxx"), "a hashed key keeps a readable prefix")
	require.NoError(t, revguard.CheckKey(revguard.Key(strings.Repeat("é", 300))))
	// A cut that would split an escape must not make the marker ambiguous.
	for n := 180; n < 190; n++ {
		k := revguard.Key(strings.Repeat("a", n) + strings.Repeat(`\`, 100))
		assert.LessOrEqual(t, len(k), 256)
		assert.True(t, strings.HasSuffix(k[:len(k)-64], `\#`) && !strings.HasSuffix(k[:len(k)-64], `\\#`) ||
			strings.HasSuffix(k[:len(k)-64], `\\\#`), k)
	}
}

func TestCheckKey(t *testing.T) {
	require.NoError(t, revguard.CheckKey(strings.Repeat("k", revguard.MaxKeyLen)))
	for _, k := range []string{"", strings.Repeat("k", revguard.MaxKeyLen+1), "\xff"} {
		err := revguard.CheckKey(k)
		assert.ErrorIs(t, err, revguard.ErrInvalidKey)
		assert.False(t, errors.Is(err, revguard.ErrInvalidRevision))
	}
}

// decodeKey inverts Key for keys that were not hashed.
func decodeKey(k string) []string {
	if k == "" {
		return nil
	}
	var parts []string
	var cur strings.Builder
	for i := 0; i < len(k); i++ {
		switch {
		case k[i] == '\\' && i+1 < len(k) && k[i+1] == '_':
			i++
		case k[i] == '\\' && i+1 < len(k):
			i++
			cur.WriteByte(k[i])
		case k[i] == ':':
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(k[i])
		}
	}
	return append(parts, cur.String())
}

func FuzzKey(f *testing.F) {
	f.Add("a:b", "c", "a", "b:c")
	f.Add("", "", "", "")
	f.Add(`\`, "_", `\_`, "")
	f.Add(strings.Repeat("x", 250), "y", strings.Repeat("x", 250), "z")
	f.Fuzz(func(t *testing.T, a, b, c, d string) {
		lists := [][]string{{a}, {a, b}, {c, d}, {a, b, c}, {a, b, c, d}, {b}, {}}
		keys := make([]string, len(lists))
		for i, l := range lists {
			keys[i] = revguard.Key(l...)
			if len(keys[i]) > 256 {
				t.Fatalf("Key(%q) is %d bytes", l, len(keys[i]))
			}
			if !strings.Contains(keys[i], `\#`) && strings.Join(decodeKey(keys[i]), "\x00") != strings.Join(l, "\x00") {
				t.Fatalf("Key(%q) = %q does not decode back", l, keys[i])
			}
		}
		for i := range lists {
			for j := range lists {
				if keys[i] == keys[j] && strings.Join(lists[i], "\x00")+"|"+string(rune(len(lists[i]))) !=
					strings.Join(lists[j], "\x00")+"|"+string(rune(len(lists[j]))) {
					t.Fatalf("Key(%q) == Key(%q) == %q", lists[i], lists[j], keys[i])
				}
			}
		}
	})
}

func FuzzParseRevision(f *testing.F) {
	for _, s := range []string{"0", "42", "18446744073709551615", "18446744073709551616", "-1", "+1", " 1",
		"2026-11-23T09:00:00Z", "2026-11-23T09:00:00.123456789+05:30", "1969-12-31T23:59:59Z", "1e3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := revguard.ParseRevision(s)
		if err != nil {
			if !errors.Is(err, revguard.ErrInvalidRevision) {
				t.Fatalf("ParseRevision(%q): error %v does not wrap ErrInvalidRevision", s, err)
			}
			return
		}
		if strings.TrimSpace(s) != s || strings.HasPrefix(s, "+") {
			t.Fatalf("ParseRevision(%q) accepted spaces or a sign", s)
		}
		if !strings.ContainsAny(s, "T-:") {
			back, err := revguard.ParseRevision(r.String())
			if err != nil || back != r {
				t.Fatalf("ParseRevision(%q) = %d does not round-trip through String", s, r)
			}
		}
	})
}
