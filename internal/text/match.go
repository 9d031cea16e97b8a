package text

import (
	"fmt"
	"path"
)

// Matcher checks a Scan pattern (path.Match syntax; "" keeps every key)
// before anything is read, and returns the test it makes of a key. pkg
// names the store in the error, which wraps path.ErrBadPattern.
func Matcher(pkg, match string) (func(key string) bool, error) {
	if _, err := path.Match(match, ""); err != nil {
		return nil, fmt.Errorf("%s: scan: pattern %s: %w", pkg, Quote(match), err)
	}
	if match == "" {
		return func(string) bool { return true }, nil
	}
	return func(key string) bool {
		ok, _ := path.Match(match, key)
		return ok
	}, nil
}
