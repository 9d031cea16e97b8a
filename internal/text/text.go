// Package text holds the small string helpers that revguard's packages share
// for validating input and writing it into error messages.
package text

import (
	"strconv"
)

// Quote returns s quoted, cut to its first 64 bytes with its length noted,
// so that error messages stay short and printable whatever the input holds.
func Quote(s string) string {
	const max = 64
	if len(s) > max {
		return strconv.Quote(s[:max]) + "... (" + strconv.Itoa(len(s)) + " bytes)"
	}
	return strconv.Quote(s)
}

// AllDigits reports whether s holds only the ASCII digits 0-9 (true for "").
func AllDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
